#include <algorithm>
#include <vector>

#include <spdlog/spdlog.h>

#include <mpctl/common/time.hpp>
#include <mpctl/daemon/retention.hpp>
#include <mpctl/daemon/store/forget_tasks.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>

namespace mpctl::daemon {

Retention::Retention(asio::io_context& io, Store& store, Scheduler& scheduler,
                     std::optional<double> keep_finished_s, std::optional<size_t> keep_finished_max)
    : timer_(io),
      store_(store),
      scheduler_(scheduler),
      keep_finished_s_(keep_finished_s),
      keep_finished_max_(keep_finished_max) {}

void Retention::start() {
    if (keep_finished_s_ || keep_finished_max_) {
        sweep();
        arm();
    }
}

void Retention::stop() {
    stopped_ = true;
    timer_.cancel();
}

void Retention::arm() {
    timer_.expires_after(std::chrono::minutes(1));
    timer_.async_wait([this](const std::error_code& ec) {
        if (!ec && !stopped_) {
            sweep();
            arm();
        }
    });
}

void Retention::sweep() {
    if (sweeping_ || stopped_ || (!keep_finished_s_ && !keep_finished_max_)) {
        return;
    }
    // Oldest first (ids grow with submission): those past the count limit, and those finished too long ago.
    std::vector<int64_t> finished;
    for (const auto& [id, t] : scheduler_.tasks()) {
        if (t.durable && t.finished()) {
            finished.push_back(id);
        }
    }
    size_t over = keep_finished_max_ && finished.size() > *keep_finished_max_
                      ? finished.size() - *keep_finished_max_
                      : 0;
    int64_t before =
        keep_finished_s_ ? common::now_unix_ms() - static_cast<int64_t>(*keep_finished_s_ * 1000) : INT64_MIN;
    std::vector<int64_t> doomed;
    for (size_t i = 0; i < finished.size() && doomed.size() < k_max_per_sweep; ++i) {
        const Task* t = scheduler_.find(finished[i]);
        if (i < over || (t != nullptr && t->finished_at_ms.value_or(0) <= before)) {
            doomed.push_back(finished[i]);
        }
    }
    if (doomed.empty()) {
        return;
    }
    sweeping_ = true;
    forget_tasks(store_, scheduler_, std::move(doomed),
                 [this](const common::Result<std::vector<int64_t>>& gone) {
                     sweeping_ = false;
                     if (!gone) {
                         spdlog::warn("retention: {}", gone.error().message());
                         return;
                     }
                     spdlog::info("retention: forgot {} finished task{} (keep_finished)", gone->size(),
                                  gone->size() == 1 ? "" : "s");
                 });
}

}  // namespace mpctl::daemon
