#pragma once
// LogThrottle: one log line per burst of the same event. A condition that repeats as fast as the loop turns
// (accept failing with EMFILE) wrote 1.4 million lines in 2 s; this lets the first through, then one line
// per interval that says how many were held back. Loop thread only.

#include <chrono>
#include <cstdint>
#include <optional>

namespace mpctl::daemon {

class LogThrottle {
  public:
    using Clock = std::chrono::steady_clock;

    explicit LogThrottle(Clock::duration interval) : interval_(interval) {}

    // Whether an occurrence at NOW is logged: the number held back since the last logged one (0 for the
    // first), or nullopt to stay quiet.
    std::optional<uint64_t> admit(Clock::time_point now) {
        if (logged_once_ && now - last_logged_ < interval_) {
            ++held_back_;
            return std::nullopt;
        }
        logged_once_ = true;
        last_logged_ = now;
        uint64_t held = held_back_;
        held_back_ = 0;
        return held;
    }

  private:
    Clock::duration interval_;
    Clock::time_point last_logged_{};
    bool logged_once_ = false;
    uint64_t held_back_ = 0;
};

}  // namespace mpctl::daemon
