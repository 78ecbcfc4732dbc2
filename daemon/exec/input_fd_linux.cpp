#include <cerrno>
#include <sys/mman.h>
#include <unistd.h>

#include <mpctl/daemon/exec/input_fd_linux.hpp>

namespace mpctl::daemon {

common::Result<common::UniqueFd> input_fd(std::string_view bytes) {
    common::UniqueFd fd(::memfd_create("mpctl-input", MFD_CLOEXEC));
    if (!fd) {
        return common::sys_error("memfd_create", errno);
    }
    // At most 64 KiB (task_spec.hpp): a memory file takes it in one write; a short one is retried anyway.
    while (!bytes.empty()) {
        ssize_t n = ::write(fd.get(), bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return common::sys_error("write to a memory file", n < 0 ? errno : ENOSPC);
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
    if (::lseek(fd.get(), 0, SEEK_SET) != 0) {
        return common::sys_error("lseek", errno);
    }
    return fd;
}

}  // namespace mpctl::daemon
