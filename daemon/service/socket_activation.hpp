#pragma once
// Socket activation (sd_listen_fds(3) without libsystemd): when systemd (or whoever plays its part) passed
// us the listening socket as descriptor 3 with LISTEN_FDS and LISTEN_PID, the daemon serves that socket
// instead of binding one, so a client may connect before the daemon runs (its connection waits in the
// backlog). The LISTEN_* variables are removed from the environment whatever they said: tasks must never
// inherit them (nor NOTIFY_SOCKET: see daemonize.hpp's take_notify_socket).

#include <optional>
#include <string>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

struct ActivatedSocket {
    common::UniqueFd fd;  // listening AF_UNIX stream socket, close-on-exec
    std::string path;     // where it is bound (empty for an abstract or unnamed socket)
    int ignored = 0;      // passed descriptors past the first, closed
};

// nullopt when no socket was passed to this process (LISTEN_PID is not our pid, or LISTEN_FDS is unset or
// 0). An error when one was, but descriptor 3 is not a listening AF_UNIX stream socket. Only descriptor 3
// is served; more passed descriptors are closed (a warning says so). Call once, first thing in main.
[[nodiscard]] common::Result<std::optional<ActivatedSocket>> take_activated_socket();

}  // namespace mpctl::daemon
