#include <spdlog/spdlog.h>

#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::daemon {

TimerId AsioTimers::start(std::chrono::milliseconds delay, std::function<void()> fn) {
    TimerId id = next_++;
    auto timer = std::make_unique<asio::steady_timer>(io_, delay);
    timer->async_wait([this, id, fn = std::move(fn)](const std::error_code& ec) {
        // Gone from the table means cancelled: an expired timer's handler may already be queued, with
        // success, when something earlier in the same turn of the loop cancels it (a task's exit and its
        // timeout, say); Asio's cancel cannot take it back.
        if (ec == asio::error::operation_aborted || timers_.erase(id) == 0) {
            return;
        }
        if (ec) {
            // A steady timer has no other error; should one come, the callback runs late rather than
            // never (a task's timeout, a retry).
            spdlog::error("timer {}: {}", id, ec.message());
        }
        fn();
    });
    timers_.emplace(id, std::move(timer));
    return id;
}

void AsioTimers::cancel(TimerId id) {
    auto it = timers_.find(id);
    if (it != timers_.end()) {
        it->second->cancel();
        timers_.erase(it);
    }
}

}  // namespace mpctl::daemon
