#pragma once
// Who besides its own user a system-wide mpctld serves: when it runs as root and its group (`mpctl`
// unless the config says otherwise) exists, that group's members. Membership is the connecting process's
// own credentials at connect(2): its gid (SO_PEERCRED) or one of its supplementary groups (SO_PEERGROUPS),
// as the kernel would judge it opening a file of that group. No user or group database is read per
// connection (NSS may be a directory service; a lookup would block the loop). A user added to the group
// is served from their next login, as with every other group on the machine.
// Being served by a root daemon is being root (tasks run as the daemon's user), so membership is as good
// as root, as the docker group is. Platform code, loop thread only.

#include <optional>
#include <string>
#include <sys/types.h>

namespace mpctl::daemon {

// The gid of group NAME when this process runs as root and the group exists; nullopt otherwise. Reads the
// group database once, at start-up.
[[nodiscard]] std::optional<gid_t> admitted_group(const std::string& name = "mpctl");

// Whether the process at the other end of the connected Unix socket FD, whose gid SO_PEERCRED gave as
// GID, is a member of GROUP.
[[nodiscard]] bool peer_in_group(int fd, gid_t gid, gid_t group);

}  // namespace mpctl::daemon
