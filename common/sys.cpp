#include <cstdlib>
#include <fcntl.h>
#include <signal.h>
#include <sstream>
#include <string_view>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mpctl/common/sys.hpp>

extern char** environ;  // NOLINT: POSIX

namespace mpctl::common {

namespace {

// Writes all of DATA with OP (one write or send), retrying on EINTR and short writes; NAME is the call a
// failure is reported as.
template <typename Op>
Result<void> write_each(std::string_view data, const char* name, Op op) {
    while (!data.empty()) {
        ssize_t n = op(data);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return sys_error(name);
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

}  // namespace

Result<void> write_all(int fd, std::string_view data) {
    return write_each(data, "write", [fd](std::string_view d) { return ::write(fd, d.data(), d.size()); });
}

Result<void> send_all(int fd, std::string_view data) {
    return write_each(data, "send",
                      [fd](std::string_view d) { return ::send(fd, d.data(), d.size(), MSG_NOSIGNAL); });
}

Result<size_t> read_once(int fd, void* buf, size_t size) {
    ssize_t n = 0;
    do {
        n = ::read(fd, buf, size);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return sys_error("read");
    }
    return static_cast<size_t>(n);
}

Result<std::string> read_to_end(int fd) {
    std::string out;
    char buf[8192];
    for (;;) {
        auto n = read_once(fd, buf, sizeof buf);
        if (!n) {
            return std::unexpected(n.error());
        }
        if (*n == 0) {
            return out;
        }
        out.append(buf, *n);
    }
}

std::vector<std::string> current_environment() {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        env.emplace_back(*e);
    }
    return env;
}

Result<std::string> read_file(const std::string& path) {
    auto fd = open_cloexec(path, O_RDONLY);
    if (!fd) {
        return std::unexpected(fd.error());
    }
    auto out = read_to_end(fd->get());
    if (!out) {
        return sys_error("read " + path, out.error().err);
    }
    return out;
}

Result<UniqueFd> open_cloexec(const std::string& path, int flags, unsigned mode) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) {
        return sys_error("open " + path);
    }
    return UniqueFd(fd);
}

Result<void> set_cloexec(int fd) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
        return sys_error("fcntl FD_CLOEXEC");
    }
    return {};
}

Result<std::vector<std::string>> process_stat_fields(int pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/stat";
    auto fd = open_cloexec(path, O_RDONLY);
    if (!fd) {
        return std::unexpected(fd.error());
    }
    char buf[1024];
    auto n = read_once(fd->get(), buf, sizeof buf - 1);
    if (!n) {
        return std::unexpected(n.error());
    }
    std::string_view stat(buf, *n);
    size_t close = stat.rfind(')');
    if (close == std::string_view::npos) {
        return plain_error(path + ": unreadable");
    }
    std::vector<std::string> fields;
    std::istringstream rest{std::string(stat.substr(close + 1))};
    for (std::string field; rest >> field;) {
        fields.push_back(std::move(field));
    }
    return fields;
}

Result<uint64_t> process_start_time(int pid) {
    auto fields = process_stat_fields(pid);
    if (!fields) {
        return std::unexpected(fields.error());
    }
    constexpr size_t k_starttime = 22 - 3;
    if (fields->size() <= k_starttime) {
        return plain_error("/proc/" + std::to_string(pid) + "/stat: too few fields");
    }
    return std::strtoull((*fields)[k_starttime].c_str(), nullptr, 10);
}

int wait_status_of(const siginfo_t& info) {
    switch (info.si_code) {
        case CLD_EXITED:
            return (info.si_status & 0xff) << 8;
        case CLD_KILLED:
            return info.si_status;
        case CLD_DUMPED:
            return info.si_status | 0x80;
        default:
            return 0;
    }
}

Result<UniqueFd> pidfd_open(int pid) {
    // pidfd_open always sets O_CLOEXEC on the new descriptor.
    long fd = ::syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) {
        return sys_error("pidfd_open " + std::to_string(pid));
    }
    return UniqueFd(static_cast<int>(fd));
}

Result<OpenFilesLimit> raise_open_files_limit() {
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return sys_error("getrlimit RLIMIT_NOFILE");
    }
    OpenFilesLimit out{rl.rlim_cur, rl.rlim_max, rl.rlim_cur};
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised {
            rl.rlim_max, rl.rlim_max
        };
        if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
            return sys_error("setrlimit RLIMIT_NOFILE");
        }
        out.raised_soft = rl.rlim_max;
    }
    return out;
}

}  // namespace mpctl::common
