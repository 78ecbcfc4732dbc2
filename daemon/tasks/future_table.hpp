#pragma once
// FutureTable: everything that waits on a task goes through here: task.wait, task.as_completed and
// result, and log followers (task.logs with follow, which is how `mpctl run` streams a task and learns its
// outcome). One completion path: a watch hears each of its tasks finish, once, in completion order, and
// may also hear each start of an attempt (a follower reopens the output files then).
//
// A TaskListener: TaskEvents reports every task change here. Loop thread only.

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include <mpctl/daemon/tasks/task_listener.hpp>

namespace mpctl::daemon {

class FutureTable final : public TaskListener {
  public:
    using WatchId = uint64_t;
    using OnEvent = std::function<void(const Task& task)>;

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

    struct Watch {
        std::vector<int64_t> tasks;
        size_t remaining = 0;
        OnEvent on_finished;
        OnEvent on_started;
    };
    WatchId next_ = 1;
    std::unordered_map<WatchId, Watch> watches_;
    std::unordered_map<int64_t, std::vector<WatchId>> by_task_;
};

}  // namespace mpctl::daemon
