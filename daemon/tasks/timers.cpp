#include <spdlog/spdlog.h>

#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::daemon {

TimerId AsioTimers::start(std::chrono::milliseconds delay, std::function<void()> fn) {
    TimerId id = next_++;
    auto timer = std::make_unique<asio::steady_timer>(io_, delay);
    timer->async_wait([this, id, fn = std::move(fn)](const std::error_code& ec) {
        if (ec == asio::error::operation_aborted) {
            return;  // cancelled
        }
        if (ec) {
            // A steady timer has no other error; should one come, the callback runs late rather than
            // never (a task's timeout, a retry).
            spdlog::error("timer {}: {}", id, ec.message());
        }
        timers_.erase(id);
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
