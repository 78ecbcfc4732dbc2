#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <utility>

#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/write.hpp>
#include <spdlog/spdlog.h>

#include <mpctl/daemon/server/dispatcher.hpp>
#include <mpctl/daemon/server/session.hpp>
#include <mpctl/proto/jsonrpc.hpp>

namespace mpctl::daemon {

using proto::ErrorCode;
using proto::json;

namespace {
constexpr size_t k_read_chunk = 64 * 1024;

// A callback a connection runs for others (a close hook of a parked wait, a follower or a transient pool; a
// drain or flush waiter): what one throws is logged, and the others still run.
void run_hook(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        spdlog::error("internal error in a connection's callback: {}", e.what());
    }
}

// Runs each of FNS, taken out of their list first (one may add to it).
void run_all(std::vector<std::function<void()>> fns) {
    for (auto& fn : fns) {
        run_hook(fn);
    }
}
}  // namespace

Session::Session(asio::local::stream_protocol::socket socket, Dispatcher& dispatcher, PeerCredentials peer)
    : socket_(std::move(socket)),
      dispatcher_(dispatcher),
      peer_(peer),
      read_buffer_(std::make_unique_for_overwrite<char[]>(k_read_chunk)) {}

Session::~Session() = default;

void Session::start() {
    read_more();
}

void Session::read_more() {
    // recvmsg rather than Asio's reads, for the descriptors a client may pass along (SCM_RIGHTS). Read at
    // once while data is there (as Asio's speculative read does), wait for readiness only when none is.
    while (!closed_ && !read_pending_ && !reading_paused_) {
        if (unread_begin_ < unread_end_) {
            handle_next_line();
            continue;
        }
        // A read that took less than it could emptied the socket: wait for more rather than read again
        // for an EAGAIN (one syscall less a request). Nothing is missed: the wait re-arms the socket's
        // registration, which reports data that came meanwhile.
        if (!std::exchange(drained_, false)) {
            ssize_t n = receive();
            if (n > 0) {
                unread_begin_ = 0;
                unread_end_ = static_cast<size_t>(n);
                drained_ = static_cast<size_t>(n) < k_read_chunk;
                continue;
            }
            if (n == 0) {
                on_read_error(asio::error::eof);
                return;
            }
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                // Asio's own category, so that it compares equal to asio::error::connection_reset and
                // friends.
                on_read_error(std::error_code(errno, asio::error::get_system_category()));
                return;
            }
        }
        read_pending_ = true;
        socket_.async_wait(asio::socket_base::wait_read,
                           [self = shared_from_this()](const std::error_code& ec) {
                               self->read_pending_ = false;
                               if (ec) {
                                   self->on_read_error(ec);
                                   return;
                               }
                               self->read_more();
                           });
        return;
    }
}

void Session::handle_next_line() {
    // The next request is taken only once the answers before it have drained below the low-water mark: a
    // client that pipelines a hundred task.list and reads nothing gets one answer built, not a hundred.
    if (queued_bytes_ >= k_low_water) {
        reading_paused_ = true;
        when_drained([weak = weak_from_this()] {
            if (auto s = weak.lock()) {
                s->reading_paused_ = false;
                s->read_more();
            }
        });
        return;
    }
    std::string_view rest(read_buffer_.get() + unread_begin_, unread_end_ - unread_begin_);
    unread_begin_ += framer_.feed_one(
        rest, [&](std::string_view line) { handle_line(line); },
        [&] {
            send(proto::encode_error_line("null", ErrorCode::invalid_request,
                                          "request too large (the limit is " +
                                              std::to_string(proto::k_max_message_bytes) +
                                              " bytes per line)"));
        });
}

bool Session::peer_hung_up() {
    // A client that closed its socket (or shut down both ways) leaves POLLHUP; one that only shut down its
    // writing side (a half-close) does not. Both read as EOF.
    pollfd p{socket_.native_handle(), POLLIN | POLLRDHUP, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

void Session::watch_for_hang_up() {
    // Asio completes a wait_error on EPOLLHUP and EPOLLERR. Armed before the check below, so that a hang-up
    // between the two is not missed (the socket's epoll registration is edge-triggered).
    socket_.async_wait(asio::socket_base::wait_error, [self = shared_from_this()](const std::error_code& ec) {
        if (ec || self->closed_) {
            return;
        }
        if (self->peer_hung_up()) {
            self->close();  // nobody is left to read the answers: drop the waits that owed them
        } else {
            self->watch_for_hang_up();
        }
    });
}

ssize_t Session::receive() {
    iovec iov{read_buffer_.get(), k_read_chunk};
    // Room for as many descriptors as one message can carry (SCM_MAX_FD): the kernel closes those that do
    // not fit, and we could not even count them.
    constexpr size_t k_scm_max_fd = 253;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * k_scm_max_fd)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
        return n;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd = -1;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            common::UniqueFd owned(fd);
            if (passed_fds_.size() < k_max_passed_fds) {
                passed_fds_.push_back(std::move(owned));
            } else {
                ++passed_fds_dropped_;  // closed here; the claim that misses it says so
            }
        }
    }
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
        ++passed_fds_dropped_;
    }
    return n;
}

void Session::forget_passed_fds() {
    passed_fds_.clear();
    passed_fds_dropped_ = 0;
}

common::UniqueFd Session::take_passed_fd() {
    if (passed_fds_.empty()) {
        return {};
    }
    common::UniqueFd fd = std::move(passed_fds_.front());
    passed_fds_.pop_front();
    return fd;
}

void Session::on_read_error(const std::error_code& ec) {
    if (ec == asio::error::eof && !close_hooks_.empty() && !peer_hung_up()) {
        // A half-close with answers still owed: stay alive (nothing else holds us now) and keep writing
        // until the last one is out, or until the client closes outright after all.
        read_eof_ = true;
        keep_alive_ = shared_from_this();
        watch_for_hang_up();
        return;
    }
    // A client that vanished is ordinary; anything else is worth a line in the log.
    if (ec != asio::error::eof && ec != asio::error::operation_aborted &&
        ec != asio::error::connection_reset) {
        spdlog::warn("session read: {}", ec.message());
    }
    close(true);
}

void Session::handle_line(std::string_view line) {
    if (closed_) {
        return;
    }
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
        return;  // blank lines are keep-alives, not errors
    }
    auto request = proto::parse_request_line(line);
    if (!request) {
        send(
            proto::encode_error_line(request.error().id_text, request.error().code, request.error().message));
        return;
    }
    dispatcher_.dispatch(shared_from_this(), std::move(*request));
}

void Session::send(std::string line) {
    if (closed_) {
        return;
    }
    queued_bytes_ += line.size();
    queue_.push_back(std::move(line));
    write_more();
}

void Session::write_more() {
    if (writing_ || queue_.empty() || !socket_.is_open()) {
        return;
    }
    writing_ = true;
    in_flight_.clear();
    std::vector<asio::const_buffer> buffers;
    size_t batch_bytes = 0;
    while (!queue_.empty() && in_flight_.size() < 64 && batch_bytes < 1024 * 1024) {
        batch_bytes += queue_.front().size();
        in_flight_.push_back(std::move(queue_.front()));
        queue_.pop_front();
    }
    buffers.reserve(in_flight_.size());
    for (const auto& s : in_flight_) {
        buffers.emplace_back(asio::buffer(s));
    }
    asio::async_write(socket_, buffers,
                      [self = shared_from_this(), batch_bytes](const std::error_code& ec, size_t) {
                          self->writing_ = false;
                          self->queued_bytes_ -= batch_bytes;
                          self->in_flight_.clear();
                          if (ec) {
                              // A client that left without reading its answers is ordinary.
                              if (ec != asio::error::operation_aborted && ec != asio::error::broken_pipe &&
                                  ec != asio::error::connection_reset) {
                                  spdlog::warn("session write: {}", ec.message());
                              }
                              self->queue_.clear();
                              self->queued_bytes_ = 0;
                              self->close();
                              return;
                          }
                          if (self->queued_bytes_ < k_low_water) {
                              run_all(std::exchange(self->drain_waiters_, {}));
                          }
                          if (!self->queue_.empty()) {
                              self->write_more();
                              return;
                          }
                          run_all(std::exchange(self->flush_waiters_, {}));
                          if (self->close_after_flush_) {
                              self->shut_down();
                          }
                      });
}

void Session::when_drained(std::function<void()> fn) {
    if (queued_bytes_ < k_low_water || closed_) {
        fn();
        return;
    }
    drain_waiters_.push_back(std::move(fn));
}

void Session::when_flushed(std::function<void()> fn) {
    if (closed_ && !close_after_flush_) {
        fn();
        return;
    }
    if (!writing_ && queue_.empty()) {
        fn();
        return;
    }
    flush_waiters_.push_back(std::move(fn));
}

uint64_t Session::on_close(std::function<void()> fn) {
    if (closed_) {
        fn();
        return 0;
    }
    uint64_t id = next_hook_++;
    close_hooks_.emplace(id, std::move(fn));
    return id;
}

void Session::remove_close_hook(uint64_t id) {
    close_hooks_.erase(id);
    if (read_eof_ && close_hooks_.empty()) {
        close(true);
    }
}

void Session::when_closed(std::function<void()> fn) {
    if (closed_) {
        fn();
        return;
    }
    close_observers_.push_back(std::move(fn));
}

void Session::close(bool flush) {
    if (closed_) {
        return;
    }
    closed_ = true;
    // Released when this call returns, not before: a pending write handler keeps us alive from then on.
    auto self = std::move(keep_alive_);
    auto hooks = std::move(close_hooks_);
    close_hooks_.clear();
    for (auto& [id, fn] : hooks) {
        run_hook(fn);
    }
    run_all(std::exchange(close_observers_, {}));
    drain_waiters_.clear();
    if (flush && (writing_ || !queue_.empty())) {
        close_after_flush_ = true;
        return;
    }
    shut_down();
}

void Session::shut_down() {
    std::error_code ignored;
    socket_.shutdown(asio::local::stream_protocol::socket::shutdown_both, ignored);
    socket_.close(ignored);
    run_all(std::exchange(flush_waiters_, {}));  // nothing more will be written
}

}  // namespace mpctl::daemon
