#pragma once
// ManualTimers: the scheduler's clock in fuzz_params's daemon. Nothing fires by itself (a fuzzer must not
// sleep); fire_next() jumps to the earliest timer and runs it, so that the harness can
// play a task's timeout, kill_after or retry delay out in no time.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <utility>

#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::fuzz {

class ManualTimers final : public daemon::Timers {
  public:
    daemon::TimerId start(std::chrono::milliseconds delay, std::function<void()> fn) override {
        daemon::TimerId id = next_++;
        timers_.emplace(id, Entry{now_ + std::max<int64_t>(delay.count(), 0), std::move(fn)});
        return id;
    }

    void cancel(daemon::TimerId id) override { timers_.erase(id); }

    // Runs the earliest timer (of those due at once, the first started) of those started at SINCE (a
    // next_id()) or later; false if none is set. One at a time: a timer may cancel another due at the same
    // moment.
    bool fire_next(daemon::TimerId since = 0) {
        auto first = timers_.end();
        for (auto it = timers_.lower_bound(since); it != timers_.end(); ++it) {
            if (first == timers_.end() || it->second.due < first->second.due) {
                first = it;
            }
        }
        if (first == timers_.end()) {
            return false;
        }
        now_ = first->second.due;
        std::function<void()> fn = std::move(first->second.fn);
        timers_.erase(first);
        fn();
        return true;
    }

    [[nodiscard]] size_t pending() const { return timers_.size(); }
    // The id the next timer gets: what fire_next(since) takes to fire only the timers started from now on.
    [[nodiscard]] daemon::TimerId next_id() const { return next_; }

  private:
    struct Entry {
        int64_t due = 0;
        std::function<void()> fn;
    };
    daemon::TimerId next_ = 1;
    int64_t now_ = 0;
    std::map<daemon::TimerId, Entry> timers_;  // by id, which is start order
};

}  // namespace mpctl::fuzz
