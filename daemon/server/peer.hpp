#pragma once
// Who is on the other end of a connection, from SO_PEERCRED at accept time.

#include <sys/types.h>

namespace mpctl::daemon {

struct PeerCredentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

}  // namespace mpctl::daemon
