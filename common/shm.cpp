#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpctl/common/shm.hpp>
#include <mpctl/common/sys.hpp>

namespace mpctl::common::shm {

Result<std::string> normalize_name(std::string_view name) {
    if (!name.empty() && name.front() == '/') {
        name.remove_prefix(1);
    }
    if (name.empty() || name.size() > 255) {
        return plain_error("a segment name is 1 to 255 bytes (a leading '/' not counted)", Errc::invalid);
    }
    if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
        return plain_error("a segment name has no '/' after its first byte", Errc::invalid);
    }
    if (name == "." || name == "..") {
        return plain_error("'" + std::string(name) + "' is not a segment name", Errc::invalid);
    }
    return std::string(name);
}

std::string path_of(const std::string& name) {
    return std::string(k_dir) + "/" + name;
}

Result<UniqueFd> create(const std::string& name, uint64_t size, mode_t mode, std::string_view content) {
    UniqueFd fd(::open(k_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode & 07777));
    if (!fd) {
        return sys_error(std::string("open ") + k_dir + " (O_TMPFILE)");
    }
    // The umask took bits off the mode: it is set as asked, for sharing with other users (--mode).
    if (::fchmod(fd.get(), mode & 07777) != 0) {
        return sys_error("fchmod " + path_of(name));
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
        return sys_error("ftruncate " + path_of(name) + " to " + std::to_string(size) + " bytes");
    }
    for (size_t done = 0; done < content.size();) {
        ssize_t put =
            ::pwrite(fd.get(), content.data() + done, content.size() - done, static_cast<off_t>(done));
        if (put <= 0) {
            return sys_error("write " + path_of(name));
        }
        done += static_cast<size_t>(put);
    }
    std::string self = "/proc/self/fd/" + std::to_string(fd.get());
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path_of(name).c_str(), AT_SYMLINK_FOLLOW) != 0) {
        return sys_error("create " + path_of(name));
    }
    return fd;
}

Result<UniqueFd> open_segment(const std::string& name, int flags) {
    return open_cloexec(path_of(name), flags | O_NOFOLLOW);
}

}  // namespace mpctl::common::shm
