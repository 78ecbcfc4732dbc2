#pragma once
// Store: the SQLite journal (WAL) that is the durable truth about tasks and pool sizes.
//
// Start-up reads (store_reads.cpp) run on the calling thread before start(). After start(), writes go
// through the group commit (group_commit.hpp: one transaction per group, completions on the loop after
// COMMIT returned), and with durability normal the Checkpointer folds the WAL back on its own thread.
// A TaskListener: every change of a task is journaled (fire and forget, retried if a commit fails).
// Loop thread only, but for what the commit and checkpoint threads do on their own.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/store/checkpointer.hpp>
#include <mpctl/daemon/store/durability.hpp>
#include <mpctl/daemon/store/group_commit.hpp>
#include <mpctl/daemon/store/journal_op.hpp>
#include <mpctl/daemon/store/manager_rows.hpp>
#include <mpctl/daemon/tasks/environments.hpp>
#include <mpctl/daemon/tasks/task.hpp>
#include <mpctl/daemon/tasks/task_listener.hpp>

struct sqlite3;
struct sqlite3_stmt;

namespace mpctl::daemon {

class Store final : public TaskListener, public ManagerJournal {
  public:
    using Done = JournalOp::Done;

    // Opens (creating if needed) the database at PATH, checks every page of it (integrity.hpp) and brings
    // its schema up to date. A damaged journal is an Error coded damaged, naming PATH; it is left exactly
    // as it was found (nothing is written to it, and closing does not checkpoint its WAL into it).
    [[nodiscard]] static common::Result<std::unique_ptr<Store>> open(const std::string& path,
                                                                     Durability durability);
    ~Store() override;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // -- start-up, before start() (store_reads.cpp) ----------------------------------------------------
    struct PoolRow {
        int workers = 0;
        bool transient = false;  // a map's: it existed only for a connection of a daemon that is gone
        std::string worker;      // a warm pool's worker as JSON text (warm/worker_spec.hpp), or empty
        std::string backend;     // a Slurm pool's settings as JSON text (slurm/slurm_spawner.hpp), or empty
    };
    // Everything a start reads back, read before the daemon is built: damage found by a read stops the
    // start as damage found at open does.
    struct Contents {
        std::map<std::string, PoolRow> pools;
        std::vector<Task> tasks;
        std::map<int64_t, std::shared_ptr<const proto::Environment>> environments;
        int64_t next_task_id = 1;
        int64_t next_environment_id = 1;
        int64_t next_lock_token = 1;  // fencing tokens below it may have been handed out
        std::vector<SegmentRow> segments;
        std::vector<QueueRow> queues;  // durable ones
        std::vector<DictRow> dicts;
        std::vector<TokenRow> tokens;
    };
    [[nodiscard]] common::Result<Contents> load();
    [[nodiscard]] common::Result<std::vector<Task>> load_tasks();
    [[nodiscard]] common::Result<std::map<std::string, PoolRow>> load_pools();
    [[nodiscard]] common::Result<int64_t> load_next_task_id();
    // The environments unfinished tasks refer to, and the next free environment id.
    [[nodiscard]] common::Result<std::map<int64_t, std::shared_ptr<const proto::Environment>>>
    load_environments();
    [[nodiscard]] common::Result<int64_t> load_next_environment_id();
    [[nodiscard]] common::Result<std::vector<SegmentRow>> load_segments();
    // meta.KEY as an integer, FALLBACK when there is none.
    [[nodiscard]] common::Result<int64_t> load_meta_int(const char* key, int64_t fallback);

    // -- running --------------------------------------------------------------------------------------
    // Starts committing; completions run on LOOP. From here on the journal is the daemon's: closing
    // checkpoints its WAL into it again.
    void start(asio::io_context& loop);
    // Commits everything queued and stops the threads. Completions not yet run are dropped.
    void stop();

    // DONE runs on the loop once the rows are committed (or failed to be), all in one transaction, with
    // the environments first seen in this submission. TASKS is not empty.
    void insert_tasks(const std::vector<const Task*>& tasks,
                      const std::vector<Environments::Entry>& new_environments, Done done);
    // Fire and forget: the latest state of a task; retried if a commit fails.
    void update_task(const Task& task);
    // DONE runs on the loop once every write queued so far has been committed (or its commit failed: a
    // task's state is then retried, and DONE hears the error). Commits at once, as a write someone waits
    // for does, or with MAY_GROUP within GroupCommit::k_busy_gap of the previous commit.
    void after_commits(Done done, bool may_group = false);
    // TRANSIENT: a pool for one connection (a map): its row says so until drop_transient_pool.
    // WORKER: a warm pool's worker as JSON text (empty: a cold pool); BACKEND: its Slurm settings (empty:
    // local).
    void set_pool(const std::string& name, int workers, Done done, bool transient = false,
                  std::string worker = {}, std::string backend = {});
    void drop_transient_pool(const std::string& name);
    // Deletes pool NAME's row (`mpctl pool delete`): its size is forgotten. DONE runs on the loop after.
    void delete_pool(const std::string& name, Done done);
    // Deletes the rows of IDS (finished tasks: `mpctl remove`, `clean`), all in one transaction, and keeps
    // meta.next_task_id above them, so that their ids are never given again. DONE runs on the loop after.
    void delete_tasks(const std::vector<int64_t>& ids, Done done);
    // Records segment ROW (replacing one of its name); DONE runs on the loop after the commit.
    void put_segment(const SegmentRow& row, Done done);
    // Forgets segment NAME (nobody waits: a row left by a failed commit is found stale at the next start).
    void delete_segment(const std::string& name);
    // Sets meta.KEY to VALUE unless it holds more already (a high-water mark); DONE runs on the loop after.
    void raise_meta(const std::string& key, int64_t value, Done done);
    // Reads environments IDS back (a finished task let go of its own; `mpctl restart` needs it again),
    // where commits run; DONE gets them on the loop (at once when IDS is empty). A row that is missing or
    // unreadable is an error.
    using EnvironmentsRead = std::map<int64_t, std::shared_ptr<const proto::Environment>>;
    void read_environments(const std::vector<int64_t>& ids,
                           std::function<void(common::Result<EnvironmentsRead>)> done);
    // ManagerJournal: a queue's or a dict's changes.
    void write(std::vector<std::shared_ptr<const ManagerWrite>> writes, Done done) override;

    // TaskListener: the journal hears every change first.
    void task_changed(const Task& task) override { update_task(task); }
    void task_progressed(const Task& task) override { update_task(task); }
    void transient_pool_dropped(const std::string& name) override { drop_transient_pool(name); }

    // Commits so far (for diagnostics: how well writes were grouped).
    [[nodiscard]] uint64_t commit_count() const { return commits_.commit_count(); }

  private:
    Store(sqlite3* db, std::string path, Durability durability);
    // Writes BATCH in one transaction; runs on the committing thread.
    common::Result<void> apply(std::vector<JournalOp>& batch);
    common::Result<void> apply_one(const JournalOp& op);

    sqlite3* db_;
    std::string path_;
    Durability durability_;
    struct Statements {
        sqlite3_stmt* insert_task = nullptr;
        sqlite3_stmt* update_task = nullptr;
        sqlite3_stmt* set_pool = nullptr;
        sqlite3_stmt* drop_pool = nullptr;
        sqlite3_stmt* insert_env = nullptr;
        // The transaction statements of every commit, compiled once (sqlite3_exec parses its SQL each
        // time: a tenth of the daemon's work per submit in a shell loop of submits).
        sqlite3_stmt* begin = nullptr;
        sqlite3_stmt* commit = nullptr;
        sqlite3_stmt* rollback = nullptr;
    } stmts_;
    ManagerStatements manager_stmts_;
    GroupCommit commits_;
    Checkpointer checkpointer_;
};

}  // namespace mpctl::daemon
