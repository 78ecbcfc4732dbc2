#pragma once
// WorkerChannel: the daemon's end of a warm worker's socket (PROTOCOL.md, "Warm workers"): JSON lines both
// ways, a task's three descriptors passed with its run message (SCM_RIGHTS). What the worker sends is read as
// hostile input is: lines of at most 1 MiB, depth-bounded JSON, anything else ends the channel with a reason.
// Loop thread only.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/common/unique_fd.hpp>
#include <mpctl/proto/framing.hpp>

namespace mpctl::daemon {

class WorkerChannel : public std::enable_shared_from_this<WorkerChannel> {
  public:
    // A message (a JSON object), or the end of the channel: end of file (an empty REASON) or a broken
    // protocol (REASON says how).
    using OnMessage = std::function<void(const nlohmann::json& message)>;
    using OnEnd = std::function<void(const std::string& reason)>;

    WorkerChannel(asio::io_context& io, common::UniqueFd fd);
    ~WorkerChannel();
    WorkerChannel(const WorkerChannel&) = delete;
    WorkerChannel& operator=(const WorkerChannel&) = delete;

    // Starts reading; the callbacks run on the loop until the end, which runs once (never after close()).
    void start(OnMessage on_message, OnEnd on_end);
    // Sends LINE (a message as JSON text, without its newline) with FDS attached to its first bytes; false
    // if the socket refused it (the worker is gone). The descriptors are the worker's once sent: ours are
    // closed by the caller.
    bool send(std::string line, const std::vector<int>& fds = {});
    // Closes the socket: the worker reads end of file and exits. No callback runs after this.
    void close();

  private:
    void read_more();
    void end(const std::string& reason);

    asio::local::stream_protocol::socket socket_;
    OnMessage on_message_;
    OnEnd on_end_;
    proto::LineFramer framer_;
    std::vector<char> buffer_;
    std::string pending_write_;  // what the socket did not take at once, written by asio
    bool writing_ = false;
    bool ended_ = false;
    // The last read took less than the buffer holds: the socket is empty, and the next read waits for
    // readiness first rather than try at once for an EAGAIN (a worker sends one line per task).
    bool drained_ = false;
};

}  // namespace mpctl::daemon
