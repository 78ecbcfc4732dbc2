#include <sys/socket.h>
#include <unistd.h>

#include <asio/write.hpp>
#include <spdlog/spdlog.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/server/listener.hpp>
#include <mpctl/daemon/server/session.hpp>
#include <mpctl/proto/jsonrpc.hpp>

namespace mpctl::daemon {

Listener::Listener(asio::io_context& io, common::UniqueFd listening_fd, Dispatcher& dispatcher)
    : acceptor_(io), dispatcher_(dispatcher) {
    acceptor_.assign(asio::local::stream_protocol(), listening_fd.release());
}

void Listener::start() {
    accept_next();
}

void Listener::stop() {
    stopped_ = true;
    std::error_code ignored;
    acceptor_.close(ignored);
}

void Listener::close_all() {
    for (auto& weak : sessions_) {
        if (auto s = weak.lock()) {
            s->close(true);
        }
    }
    sessions_.clear();
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
            // EMFILE and friends: log and keep accepting rather than dying.
            spdlog::warn("accept: {}", ec.message());
            accept_next();
            return;
        }
        int fd = socket.native_handle();
        (void)common::set_cloexec(fd);
        struct ucred cred {};
        socklen_t len = sizeof cred;
        PeerCredentials peer;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            peer = PeerCredentials{cred.pid, cred.uid, cred.gid};
        } else {
            peer.uid = static_cast<uid_t>(-1);
        }
        if (peer.uid != ::geteuid() && peer.uid != 0) {
            spdlog::warn("refused a connection from uid {} (pid {})", peer.uid, peer.pid);
            auto line = proto::encode_line(
                proto::make_error(nullptr, proto::ErrorCode::refused,
                                  "permission denied: this mpctld serves only its own user"));
            std::error_code ignored;
            asio::write(socket, asio::buffer(line), ignored);
            socket.close(ignored);
        } else {
            // Whatever one connection's start throws, the next ones are still accepted.
            try {
                auto session = std::make_shared<Session>(std::move(socket), dispatcher_, peer);
                // Forget sessions that have gone away, so the list does not grow with every connection.
                std::erase_if(sessions_, [](const std::weak_ptr<Session>& w) { return w.expired(); });
                sessions_.push_back(session);
                session->start();
            } catch (const std::exception& e) {
                spdlog::error("internal error starting a session: {}", e.what());
            }
        }
        accept_next();
    });
}

}  // namespace mpctl::daemon
