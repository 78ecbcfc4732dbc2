#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string_view>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

#include <spdlog/spdlog.h>

#include <mpctl/common/paths.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/service/daemonize.hpp>
#include <mpctl/daemon/service/endpoint.hpp>

extern char** environ;

namespace mpctl::daemon {

namespace {

std::unexpected<common::Error> fail(std::string message, bool already_running = false) {
    return common::plain_error(std::move(message),
                               already_running ? common::Errc::already_running : common::Errc::failed);
}

// True if a live daemon (possibly of another state dir) answers on PATH. Connecting is not enough: the
// socket of a daemon that was just killed can outlive it for a moment in a child it was spawning (the
// child holds a copy of every fd until it closes them before exec), and it accepts but never answers.
bool daemon_answers(const std::string& path) {
    common::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return false;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        return false;
    }
    static constexpr std::string_view k_probe = R"({"jsonrpc":"2.0","id":0,"method":"daemon.status"})"
                                                "\n";
    if (::send(fd.get(), k_probe.data(), k_probe.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(k_probe.size())) {
        return false;
    }
    pollfd p{fd.get(), POLLIN, 0};
    char byte = 0;
    return ::poll(&p, 1, 2000) == 1 && ::recv(fd.get(), &byte, 1, 0) == 1;
}

}  // namespace

common::Result<Endpoint> claim_endpoint(const std::string& state_dir, const std::string& socket_path,
                                        common::UniqueFd activated) {
    Endpoint ep;
    if (auto r = common::make_dirs(state_dir, 0700); !r) {
        return fail(r.error().message());
    }
    std::string lock_path = state_dir + "/mpctld.lock";
    auto lock = common::open_cloexec(lock_path, O_RDWR | O_CREAT, 0600);
    if (!lock) {
        return fail(lock.error().message());
    }
    if (::flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            auto pid = common::read_file(lock_path);
            std::string who = pid && !pid->empty() ? " (pid " + pid->substr(0, pid->find('\n')) + ")" : "";
            return fail("another mpctld" + who + " is already using state dir " + state_dir, true);
        }
        return fail("lock " + lock_path + ": " + std::strerror(errno));
    }
    ep.lock = std::move(*lock);
    record_pid(ep);
    if (activated) {
        ep.listener = std::move(activated);
        ep.activated = true;
        return ep;
    }

    if (socket_path.size() >= sizeof(sockaddr_un::sun_path)) {
        return fail("socket path too long (at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                    " bytes): " + socket_path);
    }
    std::string dir = common::parent_dir(socket_path);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        if (auto r = common::make_dirs(dir, 0700); !r) {
            return fail(r.error().message());
        }
    } else if (st.st_uid != ::geteuid() && dir != "/tmp" && dir != "/run") {
        // Someone else's directory could let them swap our socket for theirs.
        return fail("socket directory " + dir + " belongs to uid " + std::to_string(st.st_uid) +
                    ", not to us");
    }

    if (daemon_answers(socket_path)) {
        return fail("another mpctld is already serving " + socket_path, true);
    }
    ::unlink(socket_path.c_str());  // stale: its daemon is gone (we hold the lock)

    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return fail(std::string("socket: ") + std::strerror(errno));
    }
    ep.listener.reset(fd);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        return fail("bind " + socket_path + ": " + std::strerror(errno));
    }
    // chmod right after bind: the socket directory is 0700, so nobody else can reach it meanwhile, and the
    // daemon's umask stays the user's (tasks inherit it).
    if (::chmod(socket_path.c_str(), 0600) != 0) {
        return fail("chmod " + socket_path + ": " + std::strerror(errno));
    }
    if (::listen(fd, SOMAXCONN) != 0) {
        return fail("listen " + socket_path + ": " + std::strerror(errno));
    }
    return ep;
}

void record_pid(const Endpoint& endpoint) {
    std::string pid = std::to_string(::getpid()) + "\n";
    // The pid is for people and scripts that look (the lock itself is what keeps a second daemon out):
    // not being able to write it is worth a line in the log, not a failed start.
    if (::ftruncate(endpoint.lock.get(), 0) != 0 ||
        ::pwrite(endpoint.lock.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        spdlog::warn("could not record the daemon's pid in its lock file: {}", std::strerror(errno));
    }
}

namespace {

constexpr const char* k_handover_variable = "MPCTL_UPGRADE";

bool set_cloexec(int fd, bool on) {
    int flags = ::fcntl(fd, F_GETFD);
    return flags >= 0 && ::fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) == 0;
}

std::string handover_text(const Handover& h) {
    return "lock=" + std::to_string(h.lock_fd) + ",listen=" + std::to_string(h.listen_fd) +
           ",activated=" + (h.activated ? "1" : "0") + ",supervisor=" + std::to_string(h.supervisor) +
           ",restarts=" + std::to_string(h.restarts) + ",upgrades=" + std::to_string(h.upgrades) +
           (h.link_fd >= 0 ? ",link=" + std::to_string(h.link_fd) : std::string());
}

// The descriptors an exec keeps: the lock, the listening socket, and the supervisor's link if any.
std::vector<int> kept_descriptors(const Handover& h) {
    std::vector<int> fds{h.lock_fd, h.listen_fd};
    if (h.link_fd >= 0) {
        fds.push_back(h.link_fd);
    }
    return fds;
}

}  // namespace

common::Result<std::optional<Handover>> take_handover() {
    const char* value = std::getenv(k_handover_variable);
    if (value == nullptr) {
        return std::nullopt;
    }
    const std::string text = value;
    ::unsetenv(k_handover_variable);
    Handover h;
    std::string_view rest = text;
    while (!rest.empty()) {
        auto comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        auto eq = item.find('=');
        if (eq == std::string_view::npos) {
            return fail(std::string(k_handover_variable) + " is malformed: " + text);
        }
        std::string_view key = item.substr(0, eq);
        std::string_view digits = item.substr(eq + 1);
        long long n = -1;
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        if (ec != std::errc() || end != digits.data() + digits.size() || n < 0 || n > INT32_MAX) {
            return fail(std::string(k_handover_variable) + " is malformed: " + text);
        }
        int v = static_cast<int>(n);
        if (key == "lock") {
            h.lock_fd = v;
        } else if (key == "listen") {
            h.listen_fd = v;
        } else if (key == "activated") {
            h.activated = v != 0;
        } else if (key == "supervisor") {
            h.supervisor = v;
        } else if (key == "restarts") {
            h.restarts = v;
        } else if (key == "upgrades") {
            h.upgrades = v;
        } else if (key == "link") {
            h.link_fd = v;
        }  // other keys: from a newer mpctld, which the older image ignores
    }
    if (h.lock_fd < 0 || h.listen_fd < 0) {
        return fail(std::string(k_handover_variable) + " is malformed: " + text);
    }
    for (int fd : kept_descriptors(h)) {
        if (!set_cloexec(fd, true)) {
            return fail(std::string(k_handover_variable) + " names a descriptor that is not open: " + text);
        }
    }
    return h;
}

Endpoint inherited_endpoint(const Handover& handover) {
    Endpoint ep;
    ep.lock.reset(handover.lock_fd);
    ep.listener.reset(handover.listen_fd);
    ep.activated = handover.activated;
    return ep;
}

std::string own_binary_path() {
    // /proc/self/exe rather than argv[0]: a relative argv[0], or one found in PATH, would need the start's
    // cwd and PATH (a daemonized start is in / by now), while /proc/self/exe is absolute. Once a package
    // upgrade has replaced the binary (a rename over it), it names the old, deleted inode with " (deleted)"
    // appended: the path without that suffix is where the new binary is.
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        return {};
    }
    std::string path(buf, static_cast<size_t>(n));
    constexpr std::string_view k_deleted = " (deleted)";
    if (path.ends_with(k_deleted)) {
        path.resize(path.size() - k_deleted.size());
    }
    return path;
}

common::Result<void> check_executable(const std::string& path) {
    if (path.empty()) {
        return common::plain_error("the daemon's own binary path is unknown (/proc/self/exe is unreadable)");
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return common::sys_error(path);
    }
    if (!S_ISREG(st.st_mode)) {
        return common::plain_error(path + " is not a regular file", common::Errc::failed);
    }
    if (::access(path.c_str(), X_OK) != 0) {
        return common::sys_error(path + " is not executable");
    }
    return {};
}

common::Error exec_with_handover(const std::string& binary, const std::vector<std::string>& argv,
                                 const Handover& handover) {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        env.emplace_back(*e);
    }
    env.push_back(std::string(k_handover_variable) + "=" + handover_text(handover));
    // Taken out of the environment at start (no task may inherit it): the new image still tells systemd.
    if (!notify_socket_path().empty()) {
        env.push_back("NOTIFY_SOCKET=" + notify_socket_path());
    }
    std::vector<char*> envp;
    for (auto& e : env) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    std::vector<std::string> args = argv;
    std::vector<char*> argp;
    for (auto& a : args) {
        argp.push_back(a.data());
    }
    argp.push_back(nullptr);
    // Exactly these survive the exec; every other descriptor of the daemon is close-on-exec (client
    // sessions, warm workers' sockets, pidfds, the journal).
    const std::vector<int> kept = kept_descriptors(handover);
    auto close_on_exec_again = [&kept] {
        for (int fd : kept) {
            set_cloexec(fd, true);
        }
    };
    for (int fd : kept) {
        if (!set_cloexec(fd, false)) {
            auto error = common::sys_error("fcntl F_SETFD");
            close_on_exec_again();
            return error.error();
        }
    }
    std::fflush(nullptr);
    ::execve(binary.c_str(), argp.data(), envp.data());
    int err = errno;
    close_on_exec_again();
    return common::Error{common::Errc::failed, err, "exec " + binary};
}

void release_socket(const std::string& socket_path) {
    ::unlink(socket_path.c_str());
}

}  // namespace mpctl::daemon
