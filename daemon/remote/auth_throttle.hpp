#pragma once
// AuthThrottle: failed authentications by peer address. An address that failed k_max_failures times within
// k_window is refused at once until k_window has passed since its last failure, so that a token cannot be
// guessed at the speed of the network. Loop thread only.

#include <chrono>
#include <deque>
#include <map>
#include <string>

namespace mpctl::daemon {

class AuthThrottle {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr size_t k_max_failures = 5;
    static constexpr std::chrono::seconds k_window{60};
    static constexpr size_t k_max_addresses = 65536;  // past this the oldest are forgotten

    [[nodiscard]] bool blocked(const std::string& address, Clock::time_point now) {
        auto it = failures_.find(address);
        if (it == failures_.end()) {
            return false;
        }
        prune(it->second, now);
        return it->second.size() >= k_max_failures;
    }

    void fail(const std::string& address, Clock::time_point now) {
        if (failures_.size() >= k_max_addresses && !failures_.contains(address)) {
            failures_.erase(failures_.begin());
        }
        auto& times = failures_[address];
        prune(times, now);
        times.push_back(now);
        if (times.size() > k_max_failures) {
            times.pop_front();
        }
    }

  private:
    static void prune(std::deque<Clock::time_point>& times, Clock::time_point now) {
        // Blocked until a window has passed since the last failure: then every failure is forgotten.
        if (!times.empty() && now - times.back() >= k_window) {
            times.clear();
        }
    }

    std::map<std::string, std::deque<Clock::time_point>> failures_;
};

}  // namespace mpctl::daemon
