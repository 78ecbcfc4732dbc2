#pragma once
// The supervising parent (`mpctld --supervise`): a small process whose only child is the real daemon, so
// that a daemon that dies neither loses its tasks' outcomes nor stays down.
//
// It is a child subreaper: when the daemon dies, the kernel hands its live tasks to the supervisor, which,
// for each one that exits, reads its start time while it is still a zombie, appends (pid, start time, wait
// status) to the exit journal (exec/exit_journal.hpp) and only then reaps it; the daemon that comes back
// re-adopts the tasks and takes their outcomes from there. A daemon that dies of a signal (or fails after
// it was ready) is started again after a backoff; a crash loop ends the supervisor. A daemon that stops
// (exit 0) or fails to start takes the supervisor with it, with its exit code. SIGTERM, SIGINT and SIGHUP
// are forwarded to the daemon.
//
// Under systemd the supervisor is the unit's main process: the daemon's notifications (READY=1, STATUS=,
// STOPPING=1) reach systemd through it (relay_notifications), and it says STATUS= itself while the daemon
// is down.
//
// The endpoint (the lock and the listening socket) stays open in the supervisor too: while the daemon is
// down, no second daemon can start and clients wait in the socket's backlog.

#include <optional>
#include <string>
#include <sys/types.h>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/service/daemonize.hpp>

namespace mpctl::daemon {

// A daemon child's link to its supervisor.
class Supervised {
  public:
    Supervised() = default;  // not supervised
    Supervised(pid_t supervisor, int restarts, common::UniqueFd link)
        : supervisor_(supervisor), restarts_(restarts), link_(std::move(link)) {}

    // The daemon serves: tells the supervisor, which from now on takes a non-zero exit for a crash rather
    // than for a failed start.
    void ready();

    [[nodiscard]] pid_t supervisor_pid() const { return supervisor_; }  // 0: not supervised
    [[nodiscard]] int restarts() const { return restarts_; }            // daemons started before this one
    // The daemon's end of its socket to the supervisor (-1: none): for relay_notifications, and handed
    // over across an upgrade's exec.
    [[nodiscard]] int link() const { return link_.get(); }

  private:
    pid_t supervisor_ = 0;
    int restarts_ = 0;
    common::UniqueFd link_;  // SOCK_SEQPACKET: "R" once serving, "N<message>" for systemd
};

struct SupervisorOptions {
    std::string state_dir;  // where the exit journal is
    std::string log_path;   // daemonized: the log, opened afresh for each line; empty: stderr as it is
};

// What supervise() returns: in the supervisor, once it is done, the code mpctld exits with; in each daemon
// child, its link to the supervisor (and main goes on to serve).
struct Supervision {
    std::optional<int> exit_code;
    Supervised daemon;
};

// Makes this process the supervisor and forks the first daemon. READINESS (daemonize's handshake) goes to
// the first daemon alone: the supervisor drops its copy, so that the original process hears of a daemon
// that dies before it is ready. Fails only if there is no first daemon.
[[nodiscard]] common::Result<Supervision> supervise(const SupervisorOptions& options, Readiness& readiness);

}  // namespace mpctl::daemon
