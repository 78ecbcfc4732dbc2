#pragma once
// Listener: accepts clients on the daemon's Unix socket. Each accepted socket is made close-on-exec (Asio
// does not), its peer's credentials are read with SO_PEERCRED, and only the daemon's own uid or root gets a
// Session; anyone else is told why and disconnected. Loop thread only.

#include <memory>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>

#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

class Dispatcher;
class Session;

class Listener {
  public:
    // LISTENING_FD is a bound, listening AF_UNIX socket (see service/endpoint.hpp).
    Listener(asio::io_context& io, common::UniqueFd listening_fd, Dispatcher& dispatcher);

    void start();
    // Stops accepting; existing sessions go on.
    void stop();
    // Closes every session (at the end of shutdown).
    void close_all();

  private:
    void accept_next();

    asio::local::stream_protocol::acceptor acceptor_;
    Dispatcher& dispatcher_;
    std::vector<std::weak_ptr<Session>> sessions_;
    bool stopped_ = false;
};

}  // namespace mpctl::daemon
