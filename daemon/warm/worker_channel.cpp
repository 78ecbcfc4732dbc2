#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <utility>

#include <asio/write.hpp>

#include <mpctl/daemon/warm/worker_channel.hpp>
#include <mpctl/proto/bounded_json.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

WorkerChannel::WorkerChannel(asio::io_context& io, common::UniqueFd fd) : socket_(io), buffer_(64 * 1024) {
    std::error_code ignored;
    socket_.assign(asio::local::stream_protocol(), fd.release(), ignored);
    socket_.non_blocking(true, ignored);
}

WorkerChannel::~WorkerChannel() {
    close();
}

void WorkerChannel::start(OnMessage on_message, OnEnd on_end) {
    on_message_ = std::move(on_message);
    on_end_ = std::move(on_end);
    read_more();
}

void WorkerChannel::read_more() {
    if (ended_) {
        return;
    }
    if (std::exchange(drained_, false)) {
        socket_.async_wait(asio::socket_base::wait_read,
                           [weak = weak_from_this()](const std::error_code& ec) {
                               auto self = weak.lock();
                               if (!self || self->ended_) {
                                   return;
                               }
                               if (ec) {
                                   self->end(ec.message());
                                   return;
                               }
                               self->read_more();
                           });
        return;
    }
    socket_.async_read_some(
        asio::buffer(buffer_), [weak = weak_from_this()](const std::error_code& ec, size_t n) {
            auto self = weak.lock();
            if (!self || self->ended_) {
                return;
            }
            if (ec) {
                self->end(ec == asio::error::eof || ec == asio::error::connection_reset ? "" : ec.message());
                return;
            }
            self->drained_ = n < self->buffer_.size();
            std::string broken;
            self->framer_.feed(
                std::string_view(self->buffer_.data(), n),
                [&](std::string_view line) {
                    if (!broken.empty() || self->ended_) {
                        return;
                    }
                    auto parsed = proto::parse_bounded_json(line);
                    if (parsed.outcome != proto::BoundedJson::Outcome::ok || !parsed.value.is_object()) {
                        std::string shown(line.substr(0, 80));
                        broken = "it sent a line that is not a JSON object: " + proto::dump_json(shown);
                        return;
                    }
                    self->on_message_(parsed.value);
                },
                [&] { broken = "it sent a line over 1 MiB"; });
            if (!broken.empty()) {
                self->end(broken);
                return;
            }
            self->read_more();
        });
}

bool WorkerChannel::send(std::string line, const std::vector<int>& fds) {
    if (ended_ || !socket_.is_open()) {
        return false;
    }
    line += '\n';
    if (writing_) {
        // One message at a time is the protocol; a second one while the first is still going out would
        // need its descriptors to wait too. The pool never does that.
        return false;
    }
    iovec iov{line.data(), line.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = -1;
    do {
        n = ::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        // EAGAIN with nothing sent: the worker reads nothing while it has a task, and it has none.
        return false;
    }
    if (static_cast<size_t>(n) < line.size()) {
        // The descriptors went with the first bytes; the rest of a large message (a big environment)
        // follows as the worker reads.
        pending_write_ = line.substr(static_cast<size_t>(n));
        writing_ = true;
        asio::async_write(socket_, asio::buffer(pending_write_),
                          [weak = weak_from_this()](const std::error_code& ec, size_t) {
                              if (auto self = weak.lock()) {
                                  self->writing_ = false;
                                  self->pending_write_.clear();
                                  if (ec && !self->ended_) {
                                      self->end("");
                                  }
                              }
                          });
    }
    return true;
}

void WorkerChannel::end(const std::string& reason) {
    if (ended_) {
        return;
    }
    ended_ = true;
    std::error_code ignored;
    socket_.close(ignored);
    auto on_end = std::move(on_end_);
    on_message_ = nullptr;
    if (on_end) {
        on_end(reason);
    }
}

void WorkerChannel::close() {
    ended_ = true;
    on_message_ = nullptr;
    on_end_ = nullptr;
    std::error_code ignored;
    socket_.close(ignored);
}

}  // namespace mpctl::daemon
