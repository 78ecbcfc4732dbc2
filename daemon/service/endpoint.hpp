#pragma once
// Claiming the daemon's place: the state-dir lock first, then the socket. Only the holder of
// STATE_DIR/mpctld.lock may unlink a stale socket and bind a new one, so two daemons never fight over a
// path. Runs before daemonizing, so that these errors reach the user's terminal. A socket passed by systemd
// (service/socket_activation.hpp) is served as it is: nothing is bound, unlinked or chmodded, since the
// socket unit owns the file; the lock is taken all the same.

#include <string>

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

// Removes the socket file if it is still the one this process bound.
void release_socket(const std::string& socket_path);

}  // namespace mpctl::daemon
