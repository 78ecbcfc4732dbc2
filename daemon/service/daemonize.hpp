#pragma once
// Daemonizing with a readiness handshake: the original process waits until the detached child says it
// serves (or why it could not), and exits 0 or 1 accordingly. So `mpctld` returning 0 means "the socket
// answers", which is what mpctl's autostart waits for. Under systemd, readiness goes to sd_notify instead.

#include <string>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

class Readiness {
  public:
    Readiness() = default;  // foreground: nothing to tell
    explicit Readiness(common::UniqueFd pipe) : pipe_(std::move(pipe)) {}

    // The daemon serves: lets the original process exit 0 (and tells systemd, if it started us). A NOTE
    // (what the start did that the person who started it must know) is printed by the original process.
    void ready(const std::string& note = {});
    // Start-up failed: the original process prints MESSAGE and exits 1.
    void failed(const std::string& message);

  private:
    common::UniqueFd pipe_;
};

// Forks into the background: setsid, cwd "/", stdin/stdout to /dev/null, stderr to LOG_PATH (so that a
// crash report is not lost). Returns only in the child; the parent exits with the child's verdict.
[[nodiscard]] common::Result<Readiness> daemonize(const std::string& log_path);

// True when systemd started us (it sets NOTIFY_SOCKET or INVOCATION_ID).
[[nodiscard]] bool started_by_systemd();

// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET; a no-op when it is unset.
void systemd_notify(const std::string& state);

}  // namespace mpctl::daemon
