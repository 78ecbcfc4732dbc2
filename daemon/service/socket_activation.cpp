#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/service/socket_activation.hpp>

namespace mpctl::daemon {

namespace {

constexpr int k_first_fd = 3;  // SD_LISTEN_FDS_START

// A decimal number, all of TEXT, or -1.
long parse_number(const char* text) {
    if (text == nullptr || *text == '\0') {
        return -1;
    }
    errno = 0;
    char* end = nullptr;
    long value = std::strtol(text, &end, 10);
    return errno != 0 || *end != '\0' || value < 0 ? -1 : value;
}

common::Result<int> socket_option(int fd, int option, const char* what) {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, option, &value, &len) != 0) {
        return common::sys_error(std::string("socket activation: descriptor 3: ") + what);
    }
    return value;
}

}  // namespace

common::Result<std::optional<ActivatedSocket>> take_activated_socket() {
    long pid = parse_number(std::getenv("LISTEN_PID"));
    long count = parse_number(std::getenv("LISTEN_FDS"));
    // Whatever they said, our tasks must not see them (nor a daemon a task starts).
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    if (pid != static_cast<long>(::getpid()) || count < 1) {
        return std::optional<ActivatedSocket>();
    }
    ActivatedSocket out;
    out.fd.reset(k_first_fd);
    for (long i = 1; i < count && i < 1024; ++i) {
        ::close(k_first_fd + static_cast<int>(i));  // one socket is all mpctld serves
        ++out.ignored;
    }
    int fd = out.fd.get();
    if (auto r = common::set_cloexec(fd); !r) {
        return std::unexpected(r.error());
    }
    auto listening = socket_option(fd, SO_ACCEPTCONN, "SO_ACCEPTCONN");
    if (!listening) {
        return std::unexpected(listening.error());
    }
    auto domain = socket_option(fd, SO_DOMAIN, "SO_DOMAIN");
    if (!domain) {
        return std::unexpected(domain.error());
    }
    auto type = socket_option(fd, SO_TYPE, "SO_TYPE");
    if (!type) {
        return std::unexpected(type.error());
    }
    if (*domain != AF_UNIX || *type != SOCK_STREAM || *listening == 0) {
        return common::plain_error(
            "socket activation: descriptor 3 is not a listening Unix stream socket "
            "(mpctld.socket must say ListenStream=/path)");
    }
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
        len > offsetof(sockaddr_un, sun_path) && addr.sun_path[0] != '\0') {
        out.path.assign(addr.sun_path, ::strnlen(addr.sun_path, len - offsetof(sockaddr_un, sun_path)));
    }
    return std::optional<ActivatedSocket>(std::move(out));
}

}  // namespace mpctl::daemon
