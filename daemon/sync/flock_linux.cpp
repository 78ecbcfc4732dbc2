#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/sync/flock_linux.hpp>

namespace mpctl::daemon {

common::Result<void> check_lock_path(const std::string& path) {
    if (path.empty() || path.front() != '/') {
        return common::plain_error("not an absolute path: '" + path + "'", common::Errc::invalid);
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        return common::plain_error(path + " is a directory", common::Errc::invalid);
    }
    return {};
}

common::Result<common::UniqueFd> try_flock(const std::string& path, bool shared) {
    // A handful of tries: each one only repeats when another process replaced the file in between.
    for (int attempt = 0; attempt < 8; ++attempt) {
        // O_RDONLY as flock(1) opens it: a lock file need not be writable to be locked.
        auto fd = common::open_cloexec(path, O_RDONLY | O_CREAT | O_NOCTTY, 0666);
        if (!fd) {
            return fd;
        }
        if (::flock(fd->get(), (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
            return common::sys_error("flock " + path);
        }
        struct stat held {
        }, named{};
        if (::fstat(fd->get(), &held) != 0) {
            return common::sys_error("fstat " + path);
        }
        if (::stat(path.c_str(), &named) == 0 && named.st_dev == held.st_dev && named.st_ino == held.st_ino) {
            return fd;
        }
        // Unlinked or replaced while we took it: the lock is on a file nobody else will open.
    }
    return common::plain_error("flock " + path + ": the file keeps being replaced");
}

FileLockHolders::FileLockHolders(pid_t self) {
    // Lines such as "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; a waiter's is "1: -> FLOCK ...".
    std::ifstream in("/proc/locks");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string number, kind, advisory, access, dev_ino;
        pid_t pid = 0;
        words >> number >> kind;
        if (kind == "->") {
            continue;  // a process waiting, not holding
        }
        words >> advisory >> access >> pid >> dev_ino;
        unsigned major = 0, minor = 0;
        unsigned long inode = 0;
        if (std::sscanf(dev_ino.c_str(), "%x:%x:%lu", &major, &minor, &inode) != 3 || pid == self) {
            continue;
        }
        by_file_.emplace(std::pair(makedev(major, minor), static_cast<ino_t>(inode)),
                         FileLockHolder{pid, kind, access == "WRITE"});
    }
}

std::vector<FileLockHolder> FileLockHolders::on(const std::string& path) const {
    std::vector<FileLockHolder> out;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return out;
    }
    auto [first, last] = by_file_.equal_range(std::pair(st.st_dev, st.st_ino));
    for (auto it = first; it != last; ++it) {
        out.push_back(it->second);
    }
    return out;
}

}  // namespace mpctl::daemon
