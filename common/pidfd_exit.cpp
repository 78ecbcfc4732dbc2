#include <cstdint>
#include <sys/ioctl.h>

#include <mpctl/common/pidfd_exit.hpp>

namespace mpctl::common {

namespace {

// linux/pidfd.h of Linux 6.15, which Debian 12's headers predate: the first published layout
// (PIDFD_INFO_SIZE_VER0, 64 bytes). The kernel copies what both sides know of a longer one.
struct pidfd_info {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid;
    uint32_t tgid;
    uint32_t ppid;
    uint32_t ruid;
    uint32_t rgid;
    uint32_t euid;
    uint32_t egid;
    uint32_t suid;
    uint32_t sgid;
    uint32_t fsuid;
    uint32_t fsgid;
    int32_t exit_code;
};
static_assert(sizeof(pidfd_info) == 64);

constexpr uint64_t k_pidfd_info_exit = uint64_t{1} << 3;                        // PIDFD_INFO_EXIT
constexpr unsigned long k_pidfd_get_info = _IOWR(0xFF, 11, struct pidfd_info);  // PIDFD_GET_INFO

}  // namespace

std::optional<int> pidfd_exit_status(int pidfd) {
    pidfd_info info{};
    info.mask = k_pidfd_info_exit;
    // Not reaped yet: the call succeeds without PIDFD_INFO_EXIT in the mask (or fails with ESRCH).
    if (::ioctl(pidfd, k_pidfd_get_info, &info) != 0 || (info.mask & k_pidfd_info_exit) == 0) {
        return std::nullopt;
    }
    return info.exit_code;
}

}  // namespace mpctl::common
