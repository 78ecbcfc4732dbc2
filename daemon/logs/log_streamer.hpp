#pragma once
// LogStreamer: serves task.logs. Reads a task's captured output files and sends them to the client as
// task.output notifications (base64 chunks), then answers with the task's status. With follow, it keeps
// streaming what the task writes, woken by inotify (no polling), until the task finishes and the files are
// drained: a follower is a watch in the future table (tasks/future_table.hpp), which tells it when the
// task starts an attempt (new files: the earlier attempt's were put aside, and a descriptor already open
// on them reads them to their end) and when it finishes, as it tells task.wait. Every attempt's output is
// kept (exec/output_files.hpp): a stream goes through the attempts asked for in order, each chunk naming
// its attempt. A client that reads slowly pauses its stream (the session's write queue is the
// backpressure). Loop thread only.

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
        std::optional<uint64_t> tail_lines;  // start with the last N lines of each stream (of the
                                             // latest attempt, unless ATTEMPT names one)
        std::optional<int> attempt;          // only this attempt (default: every attempt, in order)
        // A stream taken up again by a client that lost its connection: where each source it had bytes of
        // resumes. Given (even empty), each chunk says its offset, so the client can ask this next time.
        struct Resume {
            int attempt = 1;
            std::string stream;
            std::optional<size_t> stage;
            uint64_t offset = 0;
        };
        std::optional<std::vector<Resume>> from;
    };
    void start(const std::shared_ptr<Responder>& responder, const Request& request);

    [[nodiscard]] size_t active() const { return followers_.size(); }

  private:
    struct Source {
        std::string stream;           // "stdout" or "stderr"
        std::optional<size_t> stage;  // a pipeline's stderr comes per stage
        int attempt = 1;
        bool from_tail = false;  // starts at the tail_lines before its end
        std::string path;        // once opened
        common::UniqueFd fd;
        uint64_t offset = 0;
        int watch = -1;
        bool done = false;  // read to the end of an attempt that is over
    };
    struct Follower {
        uint64_t id = 0;
        int64_t task_id = 0;
        std::shared_ptr<Responder> responder;
        std::vector<Source> sources;
        // What each attempt's sources are: stdout, and stderr (a pipeline's: per stage, or just STAGE).
        bool want_stdout = true;
        bool want_stderr = false;
        size_t stages = 0;  // a pipeline's; 0 for one process
        std::optional<size_t> stage;
        int last_attempt = 0;     // the latest attempt with sources
        std::optional<int> only;  // the one attempt asked for
        bool follow = false;
        std::optional<uint64_t> tail_lines;
        bool offsets = false;                 // chunks say their offset (the request had "from")
        std::vector<Request::Resume> resume;  // where the sources named there start
        uint64_t limit = UINT64_MAX;          // the task's max_output: nothing past it is sent
        bool paused = false;                  // waiting for the client to drain
        FutureTable::WatchId watch = 0;
    };

    // Where the last LINES lines of the file FD start (reading no further than LIMIT).
    static uint64_t tail_offset(int fd, uint64_t lines, uint64_t limit);
    // Sends what there is; answers once the stream is over. Whatever it throws answers the client.
    void pump(uint64_t follower_id);
    void pump_follower(Follower& f);
    void finish(uint64_t follower_id);
    // Adds the sources of the attempts the task has started since the last call (attempt 1 at first, even
    // before it starts: it is waited for).
    void add_attempts(Follower& f, const Task* task);
    void open_sources(Follower& f, const Task& task);
    // Where SRC starts: where the client resumes it, else at the tail asked for, else at 0.
    static uint64_t start_offset(const Follower& f, const Source& src);
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
