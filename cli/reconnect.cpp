#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <mpctl/cli/reconnect.hpp>

namespace mpctl::cli {

namespace {

constexpr auto k_default_timeout = std::chrono::seconds(60);
constexpr auto k_first_delay = std::chrono::milliseconds(50);
constexpr auto k_max_delay = std::chrono::milliseconds(1000);

std::chrono::milliseconds timeout_from_environment() {
    const char* env = std::getenv("MPCTL_RECONNECT_TIMEOUT");
    if (env == nullptr || env[0] == '\0') {
        return k_default_timeout;
    }
    char* end = nullptr;
    double s = std::strtod(env, &end);
    if (end == env || *end != '\0' || !std::isfinite(s) || s < 0 || s > 31536000) {
        throw CliError(exit_code::usage,
                       std::string("MPCTL_RECONNECT_TIMEOUT: expected seconds, got '") + env + "'");
    }
    return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

std::string seconds_text(std::chrono::milliseconds ms) {
    char buf[32];
    double s = static_cast<double>(ms.count()) / 1000.0;
    std::snprintf(buf, sizeof buf, s == std::floor(s) ? "%.0f" : "%.1f", s);
    return buf;
}

}  // namespace

Reconnector::Reconnector(const GlobalOptions& global)
    : global_(global), timeout_(timeout_from_environment()) {}

void Reconnector::reconnect(Client& client, const ConnectionLost& why) {
    auto now = std::chrono::steady_clock::now();
    // Something came over the last connection: this is a new outage, with a deadline of its own. Nothing
    // did (a daemon that died again before it answered): the same outage goes on.
    if (!outage_since_ || client.bytes_read() != bytes_at_reconnect_) {
        outage_since_ = now;
    }
    if (!said_) {
        said_ = true;
        std::fprintf(stderr, "mpctl: %s; reconnecting (waiting up to %s s for it to come back)\n", why.what(),
                     seconds_text(timeout_).c_str());
    }
    auto deadline = *outage_since_ + timeout_;
    auto delay = std::chrono::milliseconds(k_first_delay);
    for (;;) {
        // Never autostarted: a supervised daemon comes back by itself, and one stopped on purpose stays so.
        if (auto fresh = Client::try_connect(global_)) {
            client.replace_connection(std::move(*fresh));
            bytes_at_reconnect_ = client.bytes_read();
            return;
        }
        now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            throw CliError(why.code(), std::string(why.what()) + "; waited " + seconds_text(timeout_) +
                                           " s for the daemon to come back (MPCTL_RECONNECT_TIMEOUT)");
        }
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(delay, deadline - now));
        delay = std::min(delay * 2, std::chrono::milliseconds(k_max_delay));
    }
}

}  // namespace mpctl::cli
