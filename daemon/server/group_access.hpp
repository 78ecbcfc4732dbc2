#pragma once
// Who besides its own user a system-wide mpctld serves: when it runs as root and a group named `mpctl`
// exists, that group's members (the peer's primary gid from SO_PEERCRED, or the supplementary groups the
// group database gives its uid). Being served by a root daemon is being root (tasks run as the daemon's
// user), so membership is as good as root, as the docker group is. Platform code, loop thread only.

#include <optional>
#include <sys/types.h>

namespace mpctl::daemon {

// The gid of group `mpctl` when this process runs as root and the group exists; nullopt otherwise.
[[nodiscard]] std::optional<gid_t> admitted_group();

// Whether a peer with UID and primary GID is a member of GROUP. Reads the user and group databases (NSS:
// possibly a directory service), so it is asked only of peers the uid check refused.
[[nodiscard]] bool peer_in_group(uid_t uid, gid_t gid, gid_t group);

}  // namespace mpctl::daemon
