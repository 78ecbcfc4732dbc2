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

    // The daemon serves: lets the original process exit 0 (and tells systemd READY=1). A NOTE
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

// Keeps $NOTIFY_SOCKET for systemd_notify and removes it from the environment, so that no task inherits
// it (a task could otherwise tell systemd READY=1 or STOPPING=1 in the daemon's name). Call once, first
// thing in main, before anything reads the environment for tasks.
void take_notify_socket();

// True when systemd started us (it sets NOTIFY_SOCKET or INVOCATION_ID).
[[nodiscard]] bool started_by_systemd();

// $NOTIFY_SOCKET as take_notify_socket found it (empty: none): an upgrade puts it back for the new image.
[[nodiscard]] const std::string& notify_socket_path();

// True when there is a NOTIFY_SOCKET to tell.
[[nodiscard]] bool systemd_notify_enabled();

// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET (as it was at take_notify_socket); a
// no-op when it is unset. Relayed through the supervisor once relay_notifications named its link.
void systemd_notify(const std::string& state);

// A supervised daemon is not the unit's main process, the supervisor is, and systemd (NotifyAccess=main)
// drops what the daemon's own pid says: from now on systemd_notify sends each message over LINK (the
// supervisor's socket, service/supervisor.hpp), which passes it on. -1: straight to systemd again.
void relay_notifications(int link);

// "MONOTONIC_USEC=N": CLOCK_MONOTONIC now, which systemd wants beside RELOADING=1.
[[nodiscard]] std::string monotonic_usec_field();

}  // namespace mpctl::daemon
