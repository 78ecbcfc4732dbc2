#include <cerrno>
#include <sys/mman.h>
#include <unistd.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/input_fd_linux.hpp>

namespace mpctl::daemon {

common::Result<common::UniqueFd> input_fd(std::string_view bytes) {
    common::UniqueFd fd(::memfd_create("mpctl-input", MFD_CLOEXEC));
    if (!fd) {
        return common::sys_error("memfd_create", errno);
    }
    if (auto written = common::write_all(fd.get(), bytes); !written) {
        return std::unexpected(written.error());
    }
    if (::lseek(fd.get(), 0, SEEK_SET) != 0) {
        return common::sys_error("lseek", errno);
    }
    return fd;
}

}  // namespace mpctl::daemon
