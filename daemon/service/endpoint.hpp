#pragma once
// Claiming the daemon's place: the state-dir lock first, then the socket. Only the holder of
// STATE_DIR/mpctld.lock may unlink a stale socket and bind a new one, so two daemons never fight over a
// path. Runs before daemonizing, so that these errors reach the user's terminal.

#include <string>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

struct Endpoint {
    common::UniqueFd lock;      // flock(LOCK_EX) on STATE_DIR/mpctld.lock, which also holds our pid
    common::UniqueFd listener;  // bound and listening, close-on-exec, socket file mode 0600
};

// Fails with code already_running when another mpctld holds the state dir or answers on the socket.
[[nodiscard]] common::Result<Endpoint> claim_endpoint(const std::string& state_dir,
                                                      const std::string& socket_path);

// Rewrites the pid in the lock file (after daemonizing changed it).
void record_pid(const Endpoint& endpoint);

// Removes the socket file if it is still the one this process bound.
void release_socket(const std::string& socket_path);

}  // namespace mpctl::daemon
