#pragma once
// TaskWait: one task.wait or task.as_completed in flight, the state machine behind them. It waits in the
// future table for its unfinished tasks (counting them down, so that each finish costs O(1)), streams a
// task.completed notification per task for as_completed, and answers once all (or, with any, the first)
// are done, at its timeout, or never if the client leaves first (then it lets go of its watch and timer
// at once). Loop thread only.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <asio/steady_timer.hpp>

#include <mpctl/daemon/commands/task_context.hpp>
#include <mpctl/daemon/server/responder.hpp>

namespace mpctl::daemon {

class TaskWait : public std::enable_shared_from_this<TaskWait> {
  public:
    struct Options {
        std::vector<int64_t> ids;  // known, without duplicates
        bool any = false;          // task.wait: done when the first one is
        bool stream = false;       // task.as_completed: one notification per finished task
        bool brief = false;        // ... with the brief status (proto::to_brief_json_text)
        std::optional<std::chrono::milliseconds> timeout;
    };

    // Answers RESPONDER now if it can, else parks the wait until it can.
    static void start(const TaskContext& ctx, std::shared_ptr<Responder> responder, Options options);

    TaskWait(const TaskContext& ctx, std::shared_ptr<Responder> responder, Options options);

  private:
    void one_finished(const Task& task);
    void finish(bool timed_out);
    void abandon();

    TaskContext ctx_;
    std::shared_ptr<Responder> responder_;
    Options options_;
    size_t unfinished_ = 0;
    FutureTable::WatchId watch_ = 0;
    std::unique_ptr<asio::steady_timer> timer_;
    bool done_ = false;
};

}  // namespace mpctl::daemon
