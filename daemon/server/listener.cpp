#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/server/group_access.hpp>
#include <mpctl/daemon/server/listener.hpp>
#include <mpctl/daemon/server/session.hpp>
#include <mpctl/proto/jsonrpc.hpp>

namespace mpctl::daemon {

namespace {

common::UniqueFd open_reserve() {
    auto fd = common::open_cloexec("/dev/null", O_RDONLY);
    return fd ? std::move(*fd) : common::UniqueFd();
}

std::string held_back(uint64_t n) {
    return n == 0 ? std::string() : " (" + std::to_string(n) + " more like it in the last 10 s)";
}

}  // namespace

Listener::Listener(asio::io_context& io, common::UniqueFd listening_fd, Dispatcher& dispatcher,
                   size_t max_connections, uint64_t open_files)
    : acceptor_(io),
      dispatcher_(dispatcher),
      max_connections_(max_connections),
      open_files_(open_files),
      reserve_fd_(open_reserve()),
      backoff_(io) {
    acceptor_.assign(asio::local::stream_protocol(), listening_fd.release());
    // turn_away_one calls accept4 itself, which must not block when nobody is waiting after all.
    std::error_code ignored;
    acceptor_.non_blocking(true, ignored);
}

uint64_t Listener::headroom(uint64_t open_files) noexcept {
    return std::clamp<uint64_t>(open_files / 16, 8, 1024);
}

void Listener::start() {
    accept_next();
}

void Listener::stop() {
    stopped_ = true;
    std::error_code ignored;
    acceptor_.close(ignored);
    backoff_.cancel();
}

void Listener::close_all() {
    for (auto& weak : sessions_) {
        if (auto s = weak.lock()) {
            s->close(true);
        }
    }
    sessions_.clear();
}

size_t Listener::connections() {
    // Forget sessions that have gone away, so the list does not grow with every connection.
    std::erase_if(sessions_, [](const std::weak_ptr<Session>& w) { return w.expired(); });
    return sessions_.size();
}

void Listener::accept_next() {
    if (stopped_) {
        return;
    }
    acceptor_.async_accept([this](const std::error_code& ec, asio::local::stream_protocol::socket socket) {
        if (ec == asio::error::operation_aborted || stopped_) {
            return;
        }
        if (ec) {
            on_accept_error(ec);
            return;
        }
        admit(std::move(socket));
        accept_next();
    });
}

void Listener::admit(asio::local::stream_protocol::socket socket) {
    int fd = socket.native_handle();
    (void)common::set_cloexec(fd);
    struct ucred cred {};
    socklen_t len = sizeof cred;
    PeerCredentials peer;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        peer.pid = cred.pid;
        peer.uid = cred.uid;
        peer.gid = cred.gid;
    } else {
        peer.uid = static_cast<uid_t>(-1);
    }
    bool known = peer.uid != static_cast<uid_t>(-1);
    if (peer.uid != ::geteuid() && peer.uid != 0 &&
        !(known && group_ && peer_in_group(fd, peer.gid, *group_))) {
        if (auto held = other_uid_log_.admit(LogThrottle::Clock::now())) {
            spdlog::warn("refused a connection from uid {} (pid {}){}", peer.uid, peer.pid, held_back(*held));
        }
        refuse(fd, proto::ErrorCode::refused,
               group_ ? "permission denied: this mpctld serves only root and the " + group_name_ + " group"
                      : std::string("permission denied: this mpctld serves only its own user"));
        return;
    }
    (void)adopt(std::move(socket), std::move(peer));
}

bool Listener::adopt(asio::local::stream_protocol::socket socket, PeerCredentials peer) {
    int fd = socket.native_handle();
    if (connections() >= max_connections_) {
        if (auto held = over_limit_log_.admit(LogThrottle::Clock::now())) {
            spdlog::warn(
                "turned a client away (pid {}): {} connections are open, the limit (max_connections){}",
                peer.pid, max_connections_, held_back(*held));
        }
        refuse(fd, proto::ErrorCode::busy,
               "too many connections: " + std::to_string(max_connections_) +
                   " are open (max_connections); try again when some have closed");
        return false;
    }
    // Linux hands out the lowest free descriptor, so every one below FD is in use: past the headroom's
    // edge, this client would take what the daemon keeps for its tasks and its own error paths.
    auto number = static_cast<uint64_t>(fd);
    if (open_files_ != 0 && number + headroom(open_files_) >= open_files_) {
        if (auto held = out_of_descriptors_log_.admit(LogThrottle::Clock::now())) {
            spdlog::warn(
                "turned a client away (pid {}): descriptor {} of {}, the last {} are kept for tasks{}",
                peer.pid, number, open_files_, headroom(open_files_), held_back(*held));
        }
        refuse(fd, proto::ErrorCode::busy, "the daemon is out of file descriptors; try again later");
        return false;
    }
    // Whatever one connection's start throws, the next ones are still accepted.
    try {
        auto session = std::make_shared<Session>(std::move(socket), dispatcher_, std::move(peer));
        sessions_.push_back(session);
        session->start();
        return true;
    } catch (const std::exception& e) {
        spdlog::error("internal error starting a session: {}", e.what());
        return false;
    }
}

void Listener::on_accept_error(const std::error_code& ec) {
    bool out_of_descriptors = ec == asio::error::no_descriptors || ec.value() == ENFILE;
    if (out_of_descriptors) {
        switch (turn_away_one()) {
            case TurnAway::done:
                accept_next();
                return;
            case TurnAway::nobody_waiting:
                // Asio tries accept before any client is there, and Linux says EMFILE before it looks: wait
                // for one (the backlog was empty, so its arrival is an edge epoll reports).
                acceptor_.async_wait(asio::socket_base::wait_read, [this](const std::error_code& wait_ec) {
                    if (!wait_ec && !stopped_) {
                        accept_next();
                    }
                });
                return;
            case TurnAway::failed:
                break;
        }
    }
    if (auto held = accept_error_log_.admit(LogThrottle::Clock::now())) {
        spdlog::warn("accept: {}; trying again in 100 ms{}", ec.message(), held_back(*held));
    }
    // Whatever failed may last (the reserve could not be had back, the system is out of files): retrying
    // at once would spin the loop.
    backoff_.expires_after(std::chrono::milliseconds(100));
    backoff_.async_wait([this](const std::error_code& wait_ec) {
        if (!wait_ec) {
            if (!reserve_fd_) {
                reserve_fd_ = open_reserve();
            }
            accept_next();
        }
    });
}

Listener::TurnAway Listener::turn_away_one() {
    if (!reserve_fd_) {
        return TurnAway::failed;
    }
    reserve_fd_.reset();
    int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
    bool nobody = fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (fd >= 0) {
        refuse(fd, proto::ErrorCode::busy, "the daemon is out of file descriptors; try again later");
        ::close(fd);
    }
    reserve_fd_ = open_reserve();
    if (fd < 0) {
        return nobody ? TurnAway::nobody_waiting : TurnAway::failed;
    }
    if (auto held = out_of_descriptors_log_.admit(LogThrottle::Clock::now())) {
        spdlog::warn("out of file descriptors: turned a client away{}", held_back(*held));
    }
    return TurnAway::done;
}

void Listener::refuse(int fd, proto::ErrorCode code, std::string_view message) {
    std::string line = proto::encode_error_line("null", code, message);
    // One small line into an empty socket buffer: it fits, and a client that does not read is not waited
    // for.
    (void)::send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    // Read away what the client has sent so far (its request, usually), so that the close is an ordinary
    // end of stream after the answer. On a Unix socket unread data only makes the client's read after the
    // answer fail with ECONNRESET; on TCP (remote clients) it sends a reset that can destroy the answer
    // before it is read. Bounded: a client that keeps writing is not waited for.
    char sink[4096];
    for (int i = 0; i < 16; ++i) {
        ssize_t n = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
            break;
        }
    }
}

}  // namespace mpctl::daemon
