#include <iterator>
#include <string>

#include <spdlog/spdlog.h>

#include <mpctl/daemon/store/schema.hpp>
#include <mpctl/daemon/store/sqlite_util.hpp>

namespace mpctl::daemon {

namespace {

// The schema, as the migrations that build it: a database at version N gets k_migrations[N..] applied.
// Append a migration to change the schema; never edit one that has shipped.
const char* const k_migrations[] = {
    // 1: tasks and pools.
    R"sql(
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY,
    spec         TEXT NOT NULL,
    state        TEXT NOT NULL,
    reason       TEXT,
    exit_code    INTEGER,
    signal       INTEGER,
    submitted_at INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    pid          INTEGER,
    error        TEXT
);
CREATE TABLE pools (
    name    TEXT PRIMARY KEY,
    workers INTEGER NOT NULL
);
)sql",
    // 2: each distinct environment once, referred to by the tasks.
    R"sql(
CREATE TABLE environments (
    id  INTEGER PRIMARY KEY,
    env TEXT NOT NULL
);
ALTER TABLE tasks ADD COLUMN env_id INTEGER;
)sql",
    // 3: what a status shows beyond one exit code: each pipeline stage's result, truncated output.
    R"sql(
ALTER TABLE tasks ADD COLUMN outcome TEXT;
)sql",
    // 4: transient pools (a map's) are journaled while they exist, so that a restart knows their queued
    // tasks have nobody to collect them.
    R"sql(
ALTER TABLE pools ADD COLUMN transient INTEGER NOT NULL DEFAULT 0;
)sql",
    // 5: the shared-memory segments the daemon made, so that a daemon that crashed finds them again: it
    // re-watches the owners still alive and unlinks the segments whose lease ended meanwhile.
    R"sql(
CREATE TABLE segments (
    name       TEXT PRIMARY KEY,
    dev        INTEGER NOT NULL,
    ino        INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    mode       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    lease      TEXT,
    pid        INTEGER,
    pid_start  INTEGER,
    expires_at INTEGER
);
)sql",
    // 6: a warm pool's worker (pool.set's worker, max_tasks_per_worker, worker_idle_timeout) as JSON text;
    // NULL for a pool that starts a process per task.
    R"sql(
ALTER TABLE pools ADD COLUMN worker TEXT;
)sql",
    // 7: the manager: durable queues and their values, dicts (their version outlives their keys) and their
    // entries. A value's seq is the rowid, one sequence for every queue (FIFO within each): a put or a get
    // then changes one page of one b-tree, with no index beside it.
    R"sql(
CREATE TABLE queues (
    name       TEXT PRIMARY KEY,
    maxsize    INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE queue_items (
    seq   INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE TABLE dicts (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE dict_entries (
    dict    TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (dict, key)
);
)sql",
    // 8: the tokens remote clients authenticate with: the secret's SHA-256 only.
    R"sql(
CREATE TABLE tokens (
    name       TEXT PRIMARY KEY,
    hash       TEXT NOT NULL,
    methods    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
)sql",
    // 9: when a running task's process started (ticks since boot, as /proc/PID/stat says), beside its pid:
    // what lets a restarted daemon re-adopt it without mistaking a later process with the same pid for it.
    R"sql(
ALTER TABLE tasks ADD COLUMN pid_start INTEGER;
)sql",
    // 10: a pool backed by Slurm: its settings (pool.set's backend, partition, account, slurm_args) as JSON
    // text; NULL for a pool whose tasks run on this machine.
    R"sql(
ALTER TABLE pools ADD COLUMN backend TEXT;
)sql",
};
constexpr int k_schema_version = static_cast<int>(std::size(k_migrations));

}  // namespace

int schema_version() {
    return k_schema_version;
}

common::Result<void> configure_connection(sqlite3* db, Durability durability) {
    if (auto r = sqlite::exec(db, "PRAGMA journal_mode=WAL"); !r) {
        return r;
    }
    const char* sync =
        durability == Durability::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
    // With commits on the loop, the checkpointer thread folds the WAL back, never the loop.
    const char* checkpoint =
        durability == Durability::full ? "PRAGMA wal_autocheckpoint=1000" : "PRAGMA wal_autocheckpoint=0";
    // When a checkpoint has let the WAL start over, a WAL file that grew in a burst is cut back to this.
    const char* wal_size = "PRAGMA journal_size_limit=4194304";
    for (const char* sql : {sync, checkpoint, wal_size, "PRAGMA foreign_keys=OFF"}) {
        if (auto r = sqlite::exec(db, sql); !r) {
            return r;
        }
    }
    return {};
}

common::Result<void> migrate(sqlite3* db) {
    int current = 0;
    {
        sqlite::Query version(db, "PRAGMA user_version");
        current = version.ok() && version.step() == SQLITE_ROW ? sqlite3_column_int(version.get(), 0) : 0;
    }
    if (current > k_schema_version) {
        return common::plain_error("it was written by a newer mpctld (schema " + std::to_string(current) +
                                   ", this one knows up to " + std::to_string(k_schema_version) + ")");
    }
    if (current == k_schema_version) {
        return {};
    }
    if (auto r = sqlite::exec(db, "BEGIN IMMEDIATE"); !r) {
        return r;
    }
    for (int v = current; v < k_schema_version; ++v) {
        if (auto r = sqlite::exec(db, k_migrations[v]); !r) {
            (void)sqlite::exec(db, "ROLLBACK");
            return common::plain_error("upgrading the schema to version " + std::to_string(v + 1) + ": " +
                                       r.error().message());
        }
    }
    std::string set_version = "PRAGMA user_version=" + std::to_string(k_schema_version);
    if (auto r = sqlite::exec(db, set_version.c_str()); !r) {
        (void)sqlite::exec(db, "ROLLBACK");
        return r;
    }
    if (current > 0) {
        spdlog::info("journal schema upgraded from version {} to {}", current, k_schema_version);
    }
    return sqlite::exec(db, "COMMIT");
}

}  // namespace mpctl::daemon
