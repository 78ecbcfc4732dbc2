#pragma once
// Store: the SQLite journal (WAL) that is the durable truth about tasks and pool sizes.
//
// Start-up reads run on the calling thread before start(). After start(), writes queue up and are applied
// in groups, one transaction per group ("group commit"), and each write's completion runs on the daemon's
// loop after COMMIT returned: "durable before acknowledged", a submit is answered from its completion.
// Where the commit runs depends on the durability:
//   full:   on a writer thread, because every commit fsyncs the WAL (the loop never waits for a disk);
//   normal: on the loop itself, at the end of the current batch of events: a commit is then only a few
//           page-cache writes, and a thread hop would cost more than the commit. The WAL checkpoint (which
//           does fsync) runs on a background thread with its own connection.
// Either way every write that queued while a commit was running goes into the next one. Writes nobody
// waits for (a task started or finished) may wait 2 ms to share a commit with others.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/tasks/environments.hpp>
#include <mpctl/daemon/tasks/task.hpp>

struct sqlite3;
struct sqlite3_stmt;

namespace mpctl::daemon {

enum class Durability {
    full,    // fsync the WAL at every commit: acknowledged work survives power loss
    normal,  // no fsync per commit: acknowledged work survives a crash of the daemon, not of the machine
};

class Store {
  public:
    using Done = std::function<void(common::Result<void>)>;

    // Opens (creating if needed) the database at PATH and brings its schema up to date.
    [[nodiscard]] static common::Result<std::unique_ptr<Store>> open(const std::string& path,
                                                                     Durability durability);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // -- start-up, before start() ---------------------------------------------------------------------
    [[nodiscard]] common::Result<std::vector<Task>> load_tasks();
    struct PoolRow {
        int workers = 0;
        bool transient = false;  // a map's: it existed only for a connection of a daemon that is gone
    };
    [[nodiscard]] common::Result<std::map<std::string, PoolRow>> load_pools();
    [[nodiscard]] common::Result<int64_t> load_next_task_id();
    // The environments unfinished tasks refer to, and the next free environment id.
    [[nodiscard]] common::Result<std::map<int64_t, std::shared_ptr<const proto::Environment>>>
    load_environments();
    [[nodiscard]] common::Result<int64_t> load_next_environment_id();

    // -- running --------------------------------------------------------------------------------------
    // Starts committing; completions run on LOOP.
    void start(asio::io_context& loop);
    // Commits everything queued and stops the threads. Completions not yet run are dropped.
    void stop();

    // DONE runs on the loop once the rows are committed (or failed to be), all in one transaction, with
    // the environments first seen in this submission.
    void insert_tasks(const std::vector<const Task*>& tasks,
                      const std::vector<Environments::Entry>& new_environments, Done done);
    // Fire and forget: the latest state of a task; retried if a commit fails.
    void update_task(const Task& task);
    // TRANSIENT: a pool for one connection (a map): its row says so until drop_transient_pool.
    void set_pool(const std::string& name, int workers, Done done, bool transient = false);
    void drop_transient_pool(const std::string& name);

    // Commits so far (for diagnostics: how well writes were grouped).
    [[nodiscard]] uint64_t commit_count() const { return commits_; }

  private:
    struct Row {
        int64_t id = 0;
        std::string spec;  // JSON, inserts only
        std::string state;
        std::string reason;
        std::optional<int> exit_code;
        std::optional<int> signal;
        int64_t submitted_at = 0;
        std::optional<int64_t> started_at;
        std::optional<int64_t> finished_at;
        int attempts = 0;
        std::optional<int> pid;
        std::optional<std::string> error;
        std::optional<std::string> outcome;  // JSON: a pipeline's stage results, truncated output
        int64_t env_id = 0;                  // inserts only
    };
    struct Op {
        enum class Kind { insert_environment, insert_task, update_task, set_pool, drop_pool } kind;
        Row row;
        std::string pool;
        int workers = 0;
        Done done;
        bool transient = false;
    };

    Store(sqlite3* db, std::string path, Durability durability);
    static Row row_of(const Task& task);
    void enqueue(Op op);
    void enqueue(std::vector<Op> ops);
    void writer_loop();
    void flush_on_loop();
    // Commits BATCH and sorts it: completions to run, and updates to retry if the commit failed.
    struct Outcome {
        common::Result<void> result;
        std::vector<Done> completions;
        std::vector<Op> retry;
    };
    Outcome commit(std::vector<Op> batch);
    void checkpointer_loop();
    static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);
    common::Result<void> apply(std::vector<Op>& batch);
    common::Result<void> exec(const char* sql);
    // Steps a statement that returns no rows, and resets it for the next time.
    common::Result<void> run(sqlite3_stmt* stmt);
    // Brings the schema to this version (see k_migrations); refuses a newer one.
    common::Result<void> migrate();
    common::Result<void> bind_row_and_step(sqlite3_stmt* stmt, const Row& row, bool with_spec);
    [[nodiscard]] common::Error db_error(const std::string& what) const;

    sqlite3* db_;
    std::string path_;
    Durability durability_;
    sqlite3_stmt* insert_stmt_ = nullptr;
    sqlite3_stmt* update_stmt_ = nullptr;
    sqlite3_stmt* pool_stmt_ = nullptr;
    sqlite3_stmt* drop_pool_stmt_ = nullptr;
    sqlite3_stmt* env_stmt_ = nullptr;
    // The transaction statements of every commit, compiled once (sqlite3_exec parses its SQL each time:
    // a tenth of the daemon's work per submit in a shell loop of submits).
    sqlite3_stmt* begin_stmt_ = nullptr;
    sqlite3_stmt* commit_stmt_ = nullptr;
    sqlite3_stmt* rollback_stmt_ = nullptr;

    asio::io_context* loop_ = nullptr;
    std::thread writer_;        // durability full: runs the commits
    std::thread checkpointer_;  // durability normal: runs the WAL checkpoints
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Op> queue_;
    bool stopping_ = false;
    bool stopped_ = false;
    bool flush_posted_ = false;       // normal: a flush_on_loop is pending on the loop
    bool flush_timer_armed_ = false;  // normal: a deferred flush for unacknowledged updates is pending
    std::unique_ptr<asio::steady_timer> flush_timer_;
    bool checkpoint_wanted_ = false;  // normal: the WAL has grown past k_checkpoint_pages
    int checkpoint_requested_at_ =
        0;  // WAL pages when the checkpointer was last asked (committing thread only)
    std::atomic<uint64_t> commits_{0};
};

}  // namespace mpctl::daemon
