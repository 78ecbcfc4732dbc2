#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/service/daemonize.hpp>

namespace mpctl::daemon {

void Readiness::ready(const std::string& note) {
    if (pipe_) {
        (void)common::write_all(pipe_.get(), "R" + note);
        pipe_.reset();
    }
    systemd_notify("READY=1");
}

void Readiness::failed(const std::string& message) {
    if (pipe_) {
        (void)common::write_all(pipe_.get(), "F" + message);
        pipe_.reset();
    }
}

common::Result<Readiness> daemonize(const std::string& log_path) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return common::sys_error("pipe2");
    }
    common::UniqueFd read_end(fds[0]);
    common::UniqueFd write_end(fds[1]);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) {
        return common::sys_error("fork");
    }
    if (pid > 0) {
        // The original process: relay the child's verdict, then leave at once with _Exit. It is a copy of
        // the daemon mid-start-up (the lock and the socket are open, and destructors or atexit handlers
        // would unlink or flush what now belongs to the child), so nothing of it may unwind to main.
        write_end.reset();
        std::string verdict = common::read_to_end(read_end.get()).value_or(std::string());
        if (!verdict.empty() && verdict.front() == 'R') {
            if (verdict.size() > 1) {
                std::fprintf(stderr, "mpctld: %s\n", verdict.c_str() + 1);
            }
            std::_Exit(0);
        }
        std::string message =
            verdict.empty() ? "mpctld exited during start-up (see " + log_path + ")" : verdict.substr(1);
        std::fprintf(stderr, "mpctld: %s\n", message.c_str());
        std::_Exit(1);
    }
    read_end.reset();
    ::setsid();
    (void)!::chdir("/");
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
        ::dup2(null_fd, 0);
        ::dup2(null_fd, 1);
        ::close(null_fd);
    }
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd >= 0) {
        ::dup2(log_fd, 2);
        ::close(log_fd);
    }
    return Readiness(std::move(write_end));
}

namespace {

// $NOTIFY_SOCKET as it was when first asked for (take_notify_socket removes it from the environment).
const std::string& notify_socket() {
    static const std::string path = [] {
        const char* p = std::getenv("NOTIFY_SOCKET");
        return p != nullptr ? std::string(p) : std::string();
    }();
    return path;
}

int relay_link = -1;

}  // namespace

void relay_notifications(int link) {
    relay_link = link;
}

void take_notify_socket() {
    (void)notify_socket();
    ::unsetenv("NOTIFY_SOCKET");
}

bool started_by_systemd() {
    return !notify_socket().empty() || std::getenv("INVOCATION_ID") != nullptr;
}

const std::string& notify_socket_path() {
    return notify_socket();
}

bool systemd_notify_enabled() {
    return !notify_socket().empty();
}

std::string monotonic_usec_field() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return "MONOTONIC_USEC=" +
           std::to_string(static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000);
}

void systemd_notify(const std::string& state) {
    const char* path = notify_socket().c_str();
    if (path[0] == '\0') {
        return;
    }
    if (relay_link >= 0) {
        // Never blocks the loop: a STATUS= the supervisor has not read yet is not worth waiting for.
        const std::string message = "N" + state;
        (void)::send(relay_link, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        return;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    size_t len = std::strlen(path);
    if (len >= sizeof addr.sun_path) {
        return;
    }
    std::memcpy(addr.sun_path, path, len);
    if (addr.sun_path[0] == '@') {
        addr.sun_path[0] = '\0';  // abstract namespace
    }
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    (void)::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
    ::close(fd);
}

}  // namespace mpctl::daemon
