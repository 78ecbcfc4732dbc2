#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string_view>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/paths.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/service/endpoint.hpp>

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

void release_socket(const std::string& socket_path) {
    ::unlink(socket_path.c_str());
}

}  // namespace mpctl::daemon
