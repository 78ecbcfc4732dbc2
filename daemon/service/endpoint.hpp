#pragma once
// Claiming the daemon's place: the state-dir lock first, then the socket. Only the holder of
// STATE_DIR/mpctld.lock may unlink a stale socket and bind a new one, so two daemons never fight over a
// path. Runs before daemonizing, so that these errors reach the user's terminal. A socket passed by systemd
// (service/socket_activation.hpp) is served as it is: nothing is bound, unlinked or chmodded, since the
// socket unit owns the file; the lock is taken all the same.
//
// `mpctl daemon upgrade` hands the endpoint over to a new image of mpctld in the same process (execve):
// the lock and the listener stay open across the exec, and MPCTL_UPGRADE tells the new image their numbers
// (take_handover), so it neither locks nor binds again and no client ever finds the socket gone.

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

struct Endpoint {
    common::UniqueFd lock;      // flock(LOCK_EX) on STATE_DIR/mpctld.lock, which also holds our pid
    common::UniqueFd listener;  // bound and listening, close-on-exec, socket file mode 0600
    bool activated = false;     // the listener was passed to us: its file is not ours to remove
};

// Fails with code already_running when another mpctld holds the state dir or answers on the socket.
// ACTIVATED, when valid, is a listening socket systemd passed: it is served instead of SOCKET_PATH.
[[nodiscard]] common::Result<Endpoint> claim_endpoint(const std::string& state_dir,
                                                      const std::string& socket_path,
                                                      common::UniqueFd activated = {});

// Rewrites the pid in the lock file (after daemonizing changed it).
void record_pid(const Endpoint& endpoint);

// What one image of the daemon hands the next across `mpctl daemon upgrade`.
struct Handover {
    int lock_fd = -1;
    int listen_fd = -1;
    bool activated = false;  // as Endpoint::activated
    pid_t supervisor = 0;    // a supervised daemon's supervisor (0: none), and the restarts it counted
    int restarts = 0;
    int upgrades = 0;  // execs since the daemon started, the one that passed this handover included
    int link_fd = -1;  // a supervised daemon's socket to its supervisor (Supervised::link); -1: none
};

// Takes MPCTL_UPGRADE out of the environment (no task may inherit it, as NOTIFY_SOCKET) and says what it
// handed over: nullopt when this image was not started by an upgrade. An error when the variable is
// malformed or names descriptors that are not open. The descriptors are close-on-exec again. Call once,
// first thing in main.
[[nodiscard]] common::Result<std::optional<Handover>> take_handover();

// The endpoint HANDOVER passed: nothing is locked, bound or written again (the pid did not change).
[[nodiscard]] Endpoint inherited_endpoint(const Handover& handover);

// The path to exec for an upgrade: where the running binary was started from.
[[nodiscard]] std::string own_binary_path();

// Whether PATH is a regular file this process may execute: an upgrade checks before it tears anything
// down, so that a missing or non-executable binary leaves the daemon serving.
[[nodiscard]] common::Result<void> check_executable(const std::string& path);

// Execs BINARY with ARGV in this process, HANDOVER's descriptors kept open and named in MPCTL_UPGRADE.
// Returns only if the exec failed (the descriptors are close-on-exec again).
[[nodiscard]] common::Error exec_with_handover(const std::string& binary,
                                               const std::vector<std::string>& argv,
                                               const Handover& handover);

// Removes the socket file if it is still the one this process bound.
void release_socket(const std::string& socket_path);

}  // namespace mpctl::daemon
