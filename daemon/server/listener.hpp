#pragma once
// Listener: accepts clients on the daemon's Unix socket. Each accepted socket is made close-on-exec (Asio
// does not), its peer's credentials are read with SO_PEERCRED, and only the daemon's own uid or root gets a
// Session (and, if admit_group was called, that group's members: server/group_access.hpp); anyone else is
// told why and disconnected. So is a client past max_connections, one that would
// leave the daemon fewer spare descriptors than its own work needs (see headroom()), and one that arrives
// when the daemon is out of descriptors all the same (a reserve descriptor is given up to accept it: left in
// the backlog it would make every turn of the loop fail accept again). Loop thread only.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/server/log_throttle.hpp>
#include <mpctl/daemon/server/peer.hpp>
#include <mpctl/proto/errors.hpp>

namespace mpctl::daemon {

class Dispatcher;
class Session;

class Listener {
  public:
    // LISTENING_FD is a bound, listening AF_UNIX socket (see service/endpoint.hpp). OPEN_FILES is the
    // daemon's descriptor limit (0: unknown, no headroom kept).
    Listener(asio::io_context& io, common::UniqueFd listening_fd, Dispatcher& dispatcher,
             size_t max_connections, uint64_t open_files);

    // Descriptors a client may not take from the daemon: output files, pipes and pidfds of the tasks it
    // starts, the log files followers open, the journal. Out of them the daemon could start no task, and
    // every error path would run out of descriptors too.
    [[nodiscard]] static uint64_t headroom(uint64_t open_files) noexcept;

    // Also serves members of group GID, called NAME (a root daemon's `mpctl` group).
    void admit_group(gid_t gid, std::string name) {
        group_ = gid;
        group_name_ = std::move(name);
    }

    void start();
    // Stops accepting; existing sessions go on.
    void stop();
    // Closes every session (at the end of shutdown).
    void close_all();

    // Serves SOCKET as a client admitted elsewhere (a remote client, bridged from its TLS connection: PEER
    // says who) under the same limits: past them the client is told why on SOCKET and false returned.
    bool adopt(asio::local::stream_protocol::socket socket, PeerCredentials peer);

    [[nodiscard]] size_t max_connections() const noexcept { return max_connections_; }
    // Sessions open now.
    [[nodiscard]] size_t connections();

  private:
    void accept_next();
    void admit(asio::local::stream_protocol::socket socket);
    void on_accept_error(const std::error_code& ec);
    // Out of descriptors: frees the reserve to accept one waiting client and turn it away.
    enum class TurnAway { done, nobody_waiting, failed };
    TurnAway turn_away_one();
    // Tells a client why it is not served (one line, never blocking) before it is closed.
    static void refuse(int fd, proto::ErrorCode code, std::string_view message);

    asio::local::stream_protocol::acceptor acceptor_;
    Dispatcher& dispatcher_;
    size_t max_connections_;
    uint64_t open_files_;
    std::vector<std::weak_ptr<Session>> sessions_;
    common::UniqueFd reserve_fd_;
    asio::steady_timer backoff_;
    LogThrottle out_of_descriptors_log_{std::chrono::seconds(10)};
    LogThrottle accept_error_log_{std::chrono::seconds(10)};
    LogThrottle over_limit_log_{std::chrono::seconds(10)};
    LogThrottle other_uid_log_{std::chrono::seconds(10)};  // apart: one burst must not hide the other
    std::optional<gid_t> group_;
    std::string group_name_;
    bool stopped_ = false;
};

}  // namespace mpctl::daemon
