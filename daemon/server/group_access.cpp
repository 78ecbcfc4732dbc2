#include <grp.h>
#include <pwd.h>
#include <unistd.h>
#include <vector>

#include <mpctl/daemon/server/group_access.hpp>

namespace mpctl::daemon {

std::optional<gid_t> admitted_group() {
    if (::geteuid() != 0) {
        return std::nullopt;
    }
    std::vector<char> buffer(16384);
    group entry{};
    group* found = nullptr;
    if (::getgrnam_r("mpctl", &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
        return std::nullopt;
    }
    return found->gr_gid;
}

bool peer_in_group(uid_t uid, gid_t gid, gid_t group) {
    if (gid == group) {
        return true;
    }
    std::vector<char> buffer(16384);
    passwd entry{};
    passwd* found = nullptr;
    if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
        return false;
    }
    if (found->pw_gid == group) {
        return true;
    }
    int count = 64;
    std::vector<gid_t> groups(static_cast<size_t>(count));
    if (::getgrouplist(found->pw_name, found->pw_gid, groups.data(), &count) < 0) {
        groups.resize(static_cast<size_t>(count));  // COUNT is now how many there are
        if (::getgrouplist(found->pw_name, found->pw_gid, groups.data(), &count) < 0) {
            return false;
        }
    }
    groups.resize(static_cast<size_t>(count));
    for (gid_t g : groups) {
        if (g == group) {
            return true;
        }
    }
    return false;
}

}  // namespace mpctl::daemon
