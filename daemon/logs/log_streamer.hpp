#pragma once
// LogStreamer: serves task.logs. Reads a task's captured output files and sends them to the client as
// task.output notifications (base64 chunks), then answers with the task's status. With follow, it keeps
// streaming what the task writes, woken by inotify (no polling), until the task finishes and the files are
// drained: a follower is a watch in the future table (tasks/future_table.hpp), which tells it when the
// task starts an attempt (its files start over) and when it finishes, as it tells task.wait. A client
// that reads slowly pauses its stream (the session's write queue is the backpressure). Loop thread only.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/tasks/future_table.hpp>
#include <mpctl/daemon/tasks/task.hpp>

namespace mpctl::daemon {

class Responder;
class Scheduler;
class StatusView;

class LogStreamer {
  public:
    LogStreamer(asio::io_context& io, const Scheduler& tasks, FutureTable& futures, const StatusView& view);
    ~LogStreamer();

    struct Request {
        int64_t task_id = 0;
        bool want_stdout = true;
        bool want_stderr = false;
        bool follow = false;
        std::optional<size_t> stage;  // a pipeline's stderr: only this stage's (default: every stage's)
        std::optional<uint64_t> tail_lines;  // start with the last N lines of each stream
    };
    void start(const std::shared_ptr<Responder>& responder, const Request& request);

    [[nodiscard]] size_t active() const { return followers_.size(); }

  private:
    struct Source {
        std::string stream;           // "stdout" or "stderr"
        std::optional<size_t> stage;  // a pipeline's stderr comes per stage
        std::string path;
        common::UniqueFd fd;
        uint64_t offset = 0;
        int watch = -1;
    };
    struct Follower {
        uint64_t id = 0;
        int64_t task_id = 0;
        std::shared_ptr<Responder> responder;
        std::vector<Source> sources;
        bool follow = false;
        std::optional<uint64_t> tail_lines;
        uint64_t limit = UINT64_MAX;  // the task's max_output: nothing past it is sent
        bool paused = false;          // waiting for the client to drain
        FutureTable::WatchId watch = 0;
    };

    // Where the last LINES lines of the file FD start (reading no further than LIMIT).
    static uint64_t tail_offset(int fd, uint64_t lines, uint64_t limit);
    // Sends what there is; answers once the stream is over. Whatever it throws answers the client.
    void pump(uint64_t follower_id);
    void pump_follower(Follower& f);
    void finish(uint64_t follower_id);
    void open_sources(Follower& f);
    void add_watch(Source& source, uint64_t follower_id);
    void remove_watch(Source& source, uint64_t follower_id);
    void read_events();

    asio::io_context& io_;
    const Scheduler& tasks_;
    FutureTable& futures_;
    const StatusView& view_;
    std::unique_ptr<asio::posix::stream_descriptor> inotify_;
    bool inotify_waiting_ = false;
    uint64_t next_id_ = 1;
    std::map<uint64_t, Follower> followers_;
    std::unordered_map<int, std::vector<uint64_t>> by_watch_;
    std::vector<char> buffer_;
};

}  // namespace mpctl::daemon
