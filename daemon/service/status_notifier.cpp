#include <algorithm>

#include <mpctl/daemon/service/daemonize.hpp>
#include <mpctl/daemon/service/status_notifier.hpp>

namespace mpctl::daemon {

StatusNotifier::StatusNotifier(asio::io_context& io, std::function<std::string()> describe,
                               std::chrono::milliseconds interval)
    : timer_(io), describe_(std::move(describe)), interval_(interval), enabled_(systemd_notify_enabled()) {}

void StatusNotifier::changed() {
    if (!enabled_ || armed_ || stopped_) {
        return;
    }
    armed_ = true;
    timer_.expires_at(std::max(std::chrono::steady_clock::now(), last_sent_at_ + interval_));
    timer_.async_wait([this](const std::error_code& ec) {
        armed_ = false;
        if (!ec && !stopped_) {
            fire();
        }
    });
}

void StatusNotifier::fire() {
    std::string text = describe_();
    if (text == last_sent_) {
        return;
    }
    last_sent_ = text;
    last_sent_at_ = std::chrono::steady_clock::now();
    systemd_notify("STATUS=" + text);
}

void StatusNotifier::send_now(const std::string& fields) {
    if (!enabled_) {
        return;
    }
    last_sent_ = describe_();
    last_sent_at_ = std::chrono::steady_clock::now();
    systemd_notify(fields.empty() ? "STATUS=" + last_sent_ : fields + "\nSTATUS=" + last_sent_);
}

void StatusNotifier::stop() {
    stopped_ = true;
    timer_.cancel();
}

}  // namespace mpctl::daemon
