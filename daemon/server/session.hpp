#pragma once
// Session: one client connection. Reads '\n'-framed JSON-RPC requests (each capped at
// proto::k_max_message_bytes; a longer one gets an error and is skipped), hands them to the Dispatcher, and
// queues replies and notifications for writing in order. Kept alive by its own pending read; whoever needs
// to answer later holds a weak_ptr (see Responder). Loop thread only.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <asio/local/stream_protocol.hpp>

#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/server/peer.hpp>
#include <mpctl/proto/framing.hpp>

namespace mpctl::daemon {

class Dispatcher;

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(asio::local::stream_protocol::socket socket, Dispatcher& dispatcher, PeerCredentials peer);
    ~Session();

    void start();

    // Queues one encoded line. After close() this does nothing.
    void send(std::string line);
    [[nodiscard]] size_t queued_bytes() const noexcept { return queued_bytes_; }
    // Runs FN once the write queue is below the low-water mark (at once if it already is).
    void when_drained(std::function<void()> fn);
    // Runs FN once everything queued so far has been written (at once if nothing is), or the session closed.
    void when_flushed(std::function<void()> fn);

    // Hooks that run once when the connection closes (for parked waits, streams, leases). A registered
    // hook also marks outstanding work: after the client half-closes, the session stays open for writing
    // until the last hook is removed.
    uint64_t on_close(std::function<void()> fn);
    void remove_close_hook(uint64_t id);
    // Runs FN when the connection closes, without keeping a half-closed session open (state that belongs
    // to the connection, such as a transient pool).
    void when_closed(std::function<void()> fn);

    // Closes after the queued writes are flushed (or right away if FLUSH is false).
    void close(bool flush = false);
    [[nodiscard]] bool closed() const noexcept { return closed_; }
    [[nodiscard]] const PeerCredentials& peer() const noexcept { return peer_; }

    // Descriptors the client passed with SCM_RIGHTS (for "stdin_fd"), oldest first. A request's
    // descriptors travel with its first bytes, so they are here by the time the request is handled.
    [[nodiscard]] common::UniqueFd take_passed_fd();
    static constexpr size_t k_max_passed_fds = 16;  // more, unclaimed, are closed: a client cannot hoard
    // How many were closed on arrival because k_max_passed_fds were waiting (at least one more if the kernel
    // had to cut a message's descriptors): the queue no longer lines up with the requests that will claim
    // it, so the next claim is refused, and forget_passed_fds starts the queue afresh.
    [[nodiscard]] size_t passed_fds_dropped() const noexcept { return passed_fds_dropped_; }
    void forget_passed_fds();

    static constexpr size_t k_high_water = 4 * 1024 * 1024;
    static constexpr size_t k_low_water = 512 * 1024;

  private:
    void read_more();
    // One non-blocking recvmsg: bytes read (0 at EOF), or -1 with errno; passed descriptors are queued.
    ssize_t receive();
    // Frames and handles one line of what was read, or pauses reading until earlier answers drain.
    void handle_next_line();
    void on_read_error(const std::error_code& ec);
    [[nodiscard]] bool peer_hung_up();
    void watch_for_hang_up();
    void handle_line(std::string_view line);
    void write_more();
    void shut_down();

    asio::local::stream_protocol::socket socket_;
    Dispatcher& dispatcher_;
    PeerCredentials peer_;
    proto::LineFramer framer_;
    std::unique_ptr<char[]> read_buffer_;  // k_read_chunk bytes, not zeroed: a connection may send one line
    size_t unread_begin_ = 0;              // read_buffer_[unread_begin_, unread_end_) is not framed yet
    size_t unread_end_ = 0;
    bool drained_ = false;  // the last read took less than it could: the socket had no more then
    bool reading_paused_ = false;
    bool read_pending_ = false;

    std::deque<common::UniqueFd> passed_fds_;
    size_t passed_fds_dropped_ = 0;

    std::deque<std::string> queue_;
    std::vector<std::string> in_flight_;
    size_t queued_bytes_ = 0;
    bool writing_ = false;
    std::vector<std::function<void()>> drain_waiters_;
    std::vector<std::function<void()>> flush_waiters_;

    std::map<uint64_t, std::function<void()>> close_hooks_;
    std::vector<std::function<void()>> close_observers_;
    uint64_t next_hook_ = 1;
    bool closed_ = false;
    bool close_after_flush_ = false;
    bool read_eof_ = false;                // the client half-closed: finish what is outstanding, then close
    std::shared_ptr<Session> keep_alive_;  // set while half-closed with answers owed
};

}  // namespace mpctl::daemon
