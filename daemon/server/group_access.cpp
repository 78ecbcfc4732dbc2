#include <cerrno>
#include <grp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <mpctl/daemon/server/group_access.hpp>

namespace mpctl::daemon {

std::optional<gid_t> admitted_group(const std::string& name) {
    if (::geteuid() != 0) {
        return std::nullopt;
    }
    std::vector<char> buffer(16384);
    group entry{};
    group* found = nullptr;
    if (::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
        return std::nullopt;
    }
    return found->gr_gid;
}

bool peer_in_group(int fd, gid_t gid, gid_t group) {
    if (gid == group) {
        return true;
    }
    // NGROUPS_MAX is 65536 on Linux; most processes have a handful. ERANGE says how many bytes it takes.
    std::vector<gid_t> groups(64);
    auto len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) != 0) {
        if (errno != ERANGE) {
            return false;  // no supplementary groups to judge by (a kernel before 4.13): the gid alone
        }
        groups.resize(len / sizeof(gid_t));
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) != 0) {
            return false;
        }
    }
    groups.resize(len / sizeof(gid_t));
    for (gid_t g : groups) {
        if (g == group) {
            return true;
        }
    }
    return false;
}

}  // namespace mpctl::daemon
