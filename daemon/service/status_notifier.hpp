#pragma once
// StatusNotifier: systemd's STATUS= line ("3 running, 12 queued"), kept current without flooding the
// manager: a change arms a timer, and at most one datagram leaves per interval (1 s), only when the text
// changed. Nothing at all when there is no NOTIFY_SOCKET. Loop thread only.

#include <chrono>
#include <functional>
#include <string>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

namespace mpctl::daemon {

class StatusNotifier {
  public:
    // DESCRIBE gives the status text now (without "STATUS=").
    StatusNotifier(asio::io_context& io, std::function<std::string()> describe,
                   std::chrono::milliseconds interval = std::chrono::seconds(1));

    // What DESCRIBE says may have changed: a STATUS= goes out within the interval (if it did change).
    void changed();
    // Sends FIELDS ("READY=1", "STOPPING=1"...) with the status now, in one datagram.
    void send_now(const std::string& fields);
    // No more STATUS= lines (the daemon stops): the timer is cancelled.
    void stop();

  private:
    void fire();

    asio::steady_timer timer_;
    std::function<std::string()> describe_;
    std::chrono::milliseconds interval_;
    std::chrono::steady_clock::time_point last_sent_at_{};
    std::string last_sent_;
    bool enabled_;
    bool armed_ = false;
    bool stopped_ = false;
};

}  // namespace mpctl::daemon
