#pragma once
// Timers: one-shot callbacks after a delay, by id. The scheduler's only notion of time, so unit tests can
// replace it with a manual clock.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

namespace mpctl::daemon {

using TimerId = uint64_t;  // 0 means "no timer"

class Timers {
  public:
    virtual ~Timers() = default;
    // Runs FN once after DELAY on the loop, unless cancelled first.
    virtual TimerId start(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
    // Cancelling an expired or unknown timer is a no-op.
    virtual void cancel(TimerId id) = 0;
};

class AsioTimers final : public Timers {
  public:
    explicit AsioTimers(asio::io_context& io) : io_(io) {}
    TimerId start(std::chrono::milliseconds delay, std::function<void()> fn) override;
    void cancel(TimerId id) override;

  private:
    asio::io_context& io_;
    TimerId next_ = 1;
    std::unordered_map<TimerId, std::unique_ptr<asio::steady_timer>> timers_;
};

}  // namespace mpctl::daemon
