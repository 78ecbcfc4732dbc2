#pragma once
// FutureTable: everything that waits on a task goes through here: task.wait, task.as_completed and
// result, and log followers (task.logs with follow, which is how `mpctl run` streams a task and learns its
// outcome). One completion path: a watch hears each of its tasks finish, once, in completion order, and
// may also hear each start of an attempt (a follower reopens the output files then).
//
// A finish is told only once the journal holds it (set_journal_barrier): a client that saw a task's exit
// code must find the same outcome after a crash of the daemon, not a task re-adopted as lost or one the
// supervisor's records no longer know. The barrier costs a waiter the commit (well under a millisecond
// with durability normal), and nobody else anything.
//
// A TaskListener: TaskEvents reports every task change here. Loop thread only.

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include <mpctl/daemon/tasks/task_listener.hpp>

namespace mpctl::daemon {

class FutureTable final : public TaskListener {
  public:
    using WatchId = uint64_t;
    using OnEvent = std::function<void(const Task& task)>;
    // Runs its argument on the loop once every journal write queued so far is committed; the flag is true
    // for the end of a task told to its watches, which may share a commit with others under load.
    using Barrier = std::function<void(std::function<void()>, bool)>;

    void set_journal_barrier(Barrier barrier) { barrier_ = std::move(barrier); }
    // Runs FN once the journal holds every change made so far (at once without a barrier): for an answer
    // about a task that finished a moment ago, whose end may still be on its way to the disk.
    void after_journal(std::function<void()> fn) {
        if (barrier_) {
            barrier_(std::move(fn), false);
        } else {
            fn();
        }
    }

    // Calls ON_FINISHED once for each of IDS when it finishes (callers handle ids already finished), and
    // ON_STARTED (if given) each time one of them starts running. The watch ends by itself after the last
    // finish, or by unwatch().
    WatchId watch(const std::vector<int64_t>& ids, OnEvent on_finished, OnEvent on_started = {});
    void unwatch(WatchId id);

    void task_changed(const Task& task) override;

    [[nodiscard]] size_t watch_count() const { return watches_.size(); }

  private:
    void started(const Task& task);
    void finished(const Task& task);
    // Tells the watches IDS that TASK finished (those still watching).
    void deliver(const std::vector<WatchId>& ids, const Task& task);

    struct Watch {
        std::vector<int64_t> tasks;
        size_t remaining = 0;
        OnEvent on_finished;
        OnEvent on_started;
    };
    Barrier barrier_;  // none: finishes are told at once (unit tests, and a daemon without a journal)
    WatchId next_ = 1;
    std::unordered_map<WatchId, Watch> watches_;
    std::unordered_map<int64_t, std::vector<WatchId>> by_task_;
};

}  // namespace mpctl::daemon
