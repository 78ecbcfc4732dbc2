#include <algorithm>
#include <chrono>
#include <iterator>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <mpctl/daemon/store/store.hpp>
#include <mpctl/proto/errors.hpp>

namespace mpctl::daemon {

namespace {

// The schema, as the migrations that build it: a database at version N (PRAGMA user_version) gets
// k_migrations[N..] applied, in one transaction. Append a migration to change the schema; never edit one
// that has shipped.
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
};
constexpr int k_schema_version = static_cast<int>(std::size(k_migrations));

template <class T>
void bind_optional(sqlite3_stmt* stmt, int index, const std::optional<T>& value) {
    if (!value) {
        sqlite3_bind_null(stmt, index);
    } else if constexpr (std::is_same_v<T, std::string>) {
        sqlite3_bind_text(stmt, index, value->c_str(), static_cast<int>(value->size()), SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_int64(stmt, index, static_cast<sqlite3_int64>(*value));
    }
}

std::optional<int64_t> column_int(sqlite3_stmt* stmt, int col) {
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
        return std::nullopt;
    }
    return sqlite3_column_int64(stmt, col);
}

std::string column_text(sqlite3_stmt* stmt, int col) {
    const auto* text = sqlite3_column_text(stmt, col);
    return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
}

}  // namespace

namespace {
// The WAL is folded back into the database past this many pages (SQLite's own default).
constexpr int k_checkpoint_pages = 1000;
constexpr std::chrono::milliseconds k_checkpoint_retry{100};
// How long unacknowledged state changes may wait to share a commit (durability normal).
constexpr std::chrono::milliseconds k_update_delay{2};
}  // namespace

Store::Store(sqlite3* db, std::string path, Durability durability)
    : db_(db), path_(std::move(path)), durability_(durability) {}

Store::~Store() {
    stop();
    for (sqlite3_stmt* stmt : {insert_stmt_, update_stmt_, pool_stmt_, drop_pool_stmt_, env_stmt_,
                               begin_stmt_, commit_stmt_, rollback_stmt_}) {
        sqlite3_finalize(stmt);
    }
    sqlite3_close_v2(db_);
}

common::Error Store::db_error(const std::string& what) const {
    return common::Error{what + ": " + sqlite3_errmsg(db_), 0};
}

common::Result<void> Store::run(sqlite3_stmt* stmt) {
    if (sqlite3_step(stmt) == SQLITE_DONE) {
        sqlite3_reset(stmt);
        return {};
    }
    common::Error error{std::string("sqlite: ") + sqlite3_errmsg(db_), 0};  // before the reset clears it
    sqlite3_reset(stmt);
    return std::unexpected(error);
}

common::Result<void> Store::exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        std::string text = message != nullptr ? message : "unknown error";
        sqlite3_free(message);
        return std::unexpected(common::Error{std::string("sqlite: ") + text, 0});
    }
    return {};
}

common::Result<std::unique_ptr<Store>> Store::open(const std::string& path, Durability durability) {
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
        std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close_v2(db);
        return std::unexpected(common::Error{"open database " + path + ": " + message, 0});
    }
    std::unique_ptr<Store> store(new Store(db, path, durability));
    sqlite3_busy_timeout(db, 5000);
    if (auto r = store->exec("PRAGMA journal_mode=WAL"); !r) {
        return std::unexpected(r.error());
    }
    const char* sync =
        durability == Durability::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
    // With commits on the loop, the checkpointer thread folds the WAL back, never the loop.
    const char* checkpoint =
        durability == Durability::full ? "PRAGMA wal_autocheckpoint=1000" : "PRAGMA wal_autocheckpoint=0";
    // When a checkpoint has let the WAL start over, a WAL file that grew in a burst is cut back to this.
    const char* wal_size = "PRAGMA journal_size_limit=4194304";
    for (const char* sql : {sync, checkpoint, wal_size, "PRAGMA foreign_keys=OFF"}) {
        if (auto r = store->exec(sql); !r) {
            return std::unexpected(r.error());
        }
    }
    if (auto r = store->migrate(); !r) {
        return std::unexpected(common::Error{"database " + path + ": " + r.error().message(), 0});
    }

    struct {
        sqlite3_stmt** stmt;
        const char* sql;
    } statements[] = {
        {&store->insert_stmt_,
         "INSERT INTO tasks (id, state, reason, exit_code, signal, submitted_at, started_at, finished_at, "
         "attempts, pid, error, outcome, spec, env_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
         "?11, ?12, ?13, ?14)"},
        {&store->update_stmt_,
         "UPDATE tasks SET state = ?2, reason = ?3, exit_code = ?4, signal = ?5, submitted_at = ?6, "
         "started_at = ?7, finished_at = ?8, attempts = ?9, pid = ?10, error = ?11, outcome = ?12 "
         "WHERE id = ?1"},
        {&store->env_stmt_, "INSERT OR IGNORE INTO environments (id, env) VALUES (?1, ?2)"},
        {&store->pool_stmt_,
         "INSERT INTO pools (name, workers, transient) VALUES (?1, ?2, ?3) "
         "ON CONFLICT(name) DO UPDATE SET workers = ?2, transient = ?3"},
        {&store->drop_pool_stmt_, "DELETE FROM pools WHERE name = ?1 AND transient = 1"},
        {&store->begin_stmt_, "BEGIN IMMEDIATE"},
        {&store->commit_stmt_, "COMMIT"},
        {&store->rollback_stmt_, "ROLLBACK"},
    };
    for (auto& s : statements) {
        if (sqlite3_prepare_v3(db, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.stmt, nullptr) != SQLITE_OK) {
            return std::unexpected(store->db_error("prepare"));
        }
    }
    return store;
}

common::Result<void> Store::migrate() {
    sqlite3_stmt* version = nullptr;
    sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &version, nullptr);
    int current = sqlite3_step(version) == SQLITE_ROW ? sqlite3_column_int(version, 0) : 0;
    sqlite3_finalize(version);
    if (current > k_schema_version) {
        return common::plain_error("it was written by a newer mpctld (schema " + std::to_string(current) +
                                   ", this one knows up to " + std::to_string(k_schema_version) + ")");
    }
    if (current == k_schema_version) {
        return {};
    }
    if (auto r = exec("BEGIN IMMEDIATE"); !r) {
        return r;
    }
    for (int v = current; v < k_schema_version; ++v) {
        if (auto r = exec(k_migrations[v]); !r) {
            (void)exec("ROLLBACK");
            return common::plain_error("upgrading the schema to version " + std::to_string(v + 1) + ": " +
                                       r.error().message());
        }
    }
    std::string set_version = "PRAGMA user_version=" + std::to_string(k_schema_version);
    if (auto r = exec(set_version.c_str()); !r) {
        (void)exec("ROLLBACK");
        return r;
    }
    if (current > 0) {
        spdlog::info("journal schema upgraded from version {} to {}", current, k_schema_version);
    }
    return exec("COMMIT");
}

namespace {

// The outcome column back into TASK (see row_of); what cannot be read is left out, with a warning.
void restore_outcome(Task& task, const std::string& text) {
    auto outcome = nlohmann::json::parse(text, nullptr, false);
    if (!outcome.is_object()) {
        spdlog::warn("task {}: unreadable outcome column, ignored", task.id);
        return;
    }
    task.truncated = outcome.value("truncated", false);
    auto stages = outcome.find("stages");
    if (stages == outcome.end() || !stages->is_array()) {
        return;
    }
    for (const auto& s : *stages) {
        if (!s.is_object()) {
            continue;
        }
        Task::StageRun run;
        run.pid = s.value("pid", 0);
        run.exited = s.contains("exit_code") || s.contains("signal");
        if (auto v = s.find("exit_code"); v != s.end() && v->is_number_integer()) {
            run.exit_code = v->get<int>();
        }
        if (auto v = s.find("signal"); v != s.end() && v->is_number_integer()) {
            run.signal = v->get<int>();
        }
        task.stages.push_back(run);
    }
}

}  // namespace

common::Result<std::vector<Task>> Store::load_tasks() {
    sqlite3_stmt* stmt = nullptr;
    const char* sql =
        "SELECT id, spec, state, reason, exit_code, signal, submitted_at, started_at, finished_at, attempts, "
        "pid, error, env_id, outcome FROM tasks ORDER BY id";
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
        return std::unexpected(db_error("load tasks"));
    }
    std::vector<Task> tasks;
    int rc = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        Task t;
        t.id = sqlite3_column_int64(stmt, 0);
        try {
            t.spec = proto::parse_task_spec(nlohmann::json::parse(column_text(stmt, 1)), "spec");
        } catch (const std::exception& e) {
            spdlog::error("task {}: unreadable journal row, skipped: {}", t.id, e.what());
            continue;
        }
        auto state = proto::parse_task_state(column_text(stmt, 2));
        t.state = state.value_or(TaskState::failed);
        t.reason = proto::parse_fail_reason(column_text(stmt, 3)).value_or(FailReason::none);
        if (auto v = column_int(stmt, 4)) {
            t.exit_code = static_cast<int>(*v);
        }
        if (auto v = column_int(stmt, 5)) {
            t.signal = static_cast<int>(*v);
        }
        t.submitted_at_ms = sqlite3_column_int64(stmt, 6);
        t.started_at_ms = column_int(stmt, 7);
        t.finished_at_ms = column_int(stmt, 8);
        t.attempts = sqlite3_column_int(stmt, 9);
        if (auto v = column_int(stmt, 10)) {
            t.pid = static_cast<int>(*v);
        }
        if (sqlite3_column_type(stmt, 11) != SQLITE_NULL) {
            t.error = column_text(stmt, 11);
        }
        t.env_id = column_int(stmt, 12).value_or(0);
        if (sqlite3_column_type(stmt, 13) != SQLITE_NULL) {
            restore_outcome(t, column_text(stmt, 13));
        }
        tasks.push_back(std::move(t));
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        return std::unexpected(db_error("load tasks"));
    }
    return tasks;
}

common::Result<std::map<std::string, Store::PoolRow>> Store::load_pools() {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT name, workers, transient FROM pools", -1, &stmt, nullptr) !=
        SQLITE_OK) {
        return std::unexpected(db_error("load pools"));
    }
    std::map<std::string, PoolRow> pools;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        pools[column_text(stmt, 0)] = PoolRow{sqlite3_column_int(stmt, 1), sqlite3_column_int(stmt, 2) != 0};
    }
    sqlite3_finalize(stmt);
    return pools;
}

common::Result<std::map<int64_t, std::shared_ptr<const proto::Environment>>> Store::load_environments() {
    sqlite3_stmt* stmt = nullptr;
    const char* sql =
        "SELECT id, env FROM environments WHERE id IN "
        "(SELECT env_id FROM tasks WHERE state IN ('pending', 'running') AND env_id IS NOT NULL)";
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
        return std::unexpected(db_error("load environments"));
    }
    std::map<int64_t, std::shared_ptr<const proto::Environment>> envs;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(stmt, 0);
        try {
            auto env = nlohmann::json::parse(column_text(stmt, 1)).get<proto::Environment>();
            envs.emplace(id, std::make_shared<const proto::Environment>(std::move(env)));
        } catch (const std::exception& e) {
            spdlog::error("environment {}: unreadable journal row, skipped: {}", id, e.what());
        }
    }
    sqlite3_finalize(stmt);
    return envs;
}

common::Result<int64_t> Store::load_next_environment_id() {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT coalesce(max(id), 0) + 1 FROM environments", -1, &stmt, nullptr) !=
        SQLITE_OK) {
        return std::unexpected(db_error("load next environment id"));
    }
    int64_t next = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 1;
    sqlite3_finalize(stmt);
    return next;
}

// Rows are never deleted today, so max(id) + 1 is enough; meta.next_task_id is where anything that deletes
// rows must record the high-water mark, so that ids are never reused.
common::Result<int64_t> Store::load_next_task_id() {
    sqlite3_stmt* stmt = nullptr;
    const char* sql =
        "SELECT max(coalesce((SELECT max(id) FROM tasks), 0) + 1, "
        "coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'next_task_id'), 1))";
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
        return std::unexpected(db_error("load next id"));
    }
    int64_t next = 1;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        next = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    return next;
}

void Store::start(asio::io_context& loop) {
    loop_ = &loop;
    flush_timer_ = std::make_unique<asio::steady_timer>(loop);
    if (durability_ == Durability::full) {
        writer_ = std::thread([this] { writer_loop(); });
    } else {
        sqlite3_wal_hook(db_, &Store::on_wal_commit, this);
        checkpointer_ = std::thread([this] { checkpointer_loop(); });
    }
}

void Store::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopped_) {
            return;
        }
        stopping_ = true;
    }
    wake_.notify_all();
    if (writer_.joinable()) {
        writer_.join();  // it commits what is queued before it returns
    }
    if (checkpointer_.joinable()) {
        checkpointer_.join();
    }
    if (durability_ == Durability::normal && loop_ != nullptr) {
        if (flush_timer_) {
            flush_timer_->cancel();
        }
        flush_on_loop();
    }
    std::lock_guard lock(mutex_);
    stopped_ = true;
}

Store::Row Store::row_of(const Task& t) {
    Row row;
    row.id = t.id;
    row.state = std::string(proto::to_string(t.state));
    row.reason = std::string(proto::to_string(t.reason));
    row.exit_code = t.exit_code;
    row.signal = t.signal;
    row.submitted_at = t.submitted_at_ms;
    row.started_at = t.started_at_ms;
    row.finished_at = t.finished_at_ms;
    row.attempts = t.attempts;
    row.pid = t.pid;
    row.error = t.error;
    // Per-stage results are shown for pipelines only: a one-process task's single stage says nothing its
    // exit_code and signal do not, and building it would cost a JSON document at every update.
    bool with_stages = !t.stages.empty() && !t.spec.pipeline.empty();
    if (with_stages || t.truncated) {
        nlohmann::json outcome = nlohmann::json::object();
        if (with_stages) {
            nlohmann::json stages = nlohmann::json::array();
            for (const auto& s : t.stages) {
                nlohmann::json one = {{"pid", s.pid}};
                if (s.exited) {
                    one["exit_code"] = s.exit_code ? nlohmann::json(*s.exit_code) : nlohmann::json(nullptr);
                    one["signal"] = s.signal ? nlohmann::json(*s.signal) : nlohmann::json(nullptr);
                }
                stages.push_back(std::move(one));
            }
            outcome["stages"] = std::move(stages);
        }
        if (t.truncated) {
            outcome["truncated"] = true;
        }
        row.outcome = outcome.dump();
    }
    return row;
}

void Store::insert_tasks(const std::vector<const Task*>& tasks,
                         const std::vector<Environments::Entry>& new_environments, Done done) {
    std::vector<Op> ops;
    ops.reserve(tasks.size() + new_environments.size());
    for (const auto& e : new_environments) {
        Op op{Op::Kind::insert_environment, {}, {}, 0, nullptr};
        op.row.id = e.id;
        op.row.spec = nlohmann::json(*e.env).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        ops.push_back(std::move(op));
    }
    for (const Task* task : tasks) {
        Op op{Op::Kind::insert_task, row_of(*task), {}, 0, nullptr};
        op.row.spec =
            proto::to_json(task->spec, false).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        op.row.env_id = task->env_id;
        ops.push_back(std::move(op));
    }
    if (ops.empty()) {
        if (loop_ != nullptr) {
            asio::post(*loop_, [done = std::move(done)] { done({}); });
        }
        return;
    }
    // Only the last op carries the completion: the writer takes the whole group into one transaction.
    ops.back().done = std::move(done);
    enqueue(std::move(ops));
}

void Store::update_task(const Task& task) {
    enqueue(Op{Op::Kind::update_task, row_of(task), {}, 0, nullptr});
}

void Store::set_pool(const std::string& name, int workers, Done done, bool transient) {
    Op op{Op::Kind::set_pool, {}, name, workers, std::move(done)};
    op.transient = transient;
    enqueue(std::move(op));
}

void Store::drop_transient_pool(const std::string& name) {
    enqueue(Op{Op::Kind::drop_pool, {}, name, 0, nullptr});
}

void Store::enqueue(std::vector<Op> ops) {
    bool acknowledged = std::any_of(ops.begin(), ops.end(), [](const Op& op) { return op.done != nullptr; });
    {
        std::lock_guard lock(mutex_);
        for (auto& op : ops) {
            queue_.push_back(std::move(op));
        }
        if (durability_ == Durability::normal) {
            if (loop_ == nullptr || stopped_ || flush_posted_) {
                return;
            }
            if (acknowledged) {
                // Someone waits for this commit: one commit for everything queued by the events the loop
                // is handling now.
                flush_posted_ = true;
                asio::post(*loop_, [this] { flush_on_loop(); });
            } else if (!flush_timer_armed_) {
                // State changes nobody waits for are gathered for a moment: under load that is one commit
                // per many tasks instead of two per task.
                flush_timer_armed_ = true;
                flush_timer_->expires_after(k_update_delay);
                flush_timer_->async_wait([this](const std::error_code& ec) {
                    flush_timer_armed_ = false;
                    if (!ec) {
                        flush_on_loop();
                    }
                });
            }
            return;
        }
    }
    wake_.notify_one();
}

void Store::enqueue(Op op) {
    std::vector<Op> ops;
    ops.push_back(std::move(op));
    enqueue(std::move(ops));
}

common::Result<void> Store::bind_row_and_step(sqlite3_stmt* stmt, const Row& row, bool with_spec) {
    sqlite3_reset(stmt);
    sqlite3_bind_int64(stmt, 1, row.id);
    sqlite3_bind_text(stmt, 2, row.state.c_str(), -1, SQLITE_TRANSIENT);
    bind_optional(stmt, 3, row.reason.empty() ? std::optional<std::string>() : row.reason);
    bind_optional(stmt, 4, row.exit_code);
    bind_optional(stmt, 5, row.signal);
    sqlite3_bind_int64(stmt, 6, row.submitted_at);
    bind_optional(stmt, 7, row.started_at);
    bind_optional(stmt, 8, row.finished_at);
    sqlite3_bind_int(stmt, 9, row.attempts);
    bind_optional(stmt, 10, row.pid);
    bind_optional(stmt, 11, row.error);
    bind_optional(stmt, 12, row.outcome);
    if (with_spec) {
        sqlite3_bind_text(stmt, 13, row.spec.c_str(), static_cast<int>(row.spec.size()), SQLITE_STATIC);
        bind_optional(stmt, 14, row.env_id != 0 ? std::optional<int64_t>(row.env_id) : std::nullopt);
    }
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        return std::unexpected(db_error("write task " + std::to_string(row.id)));
    }
    return {};
}

common::Result<void> Store::apply(std::vector<Op>& batch) {
    if (auto r = run(begin_stmt_); !r) {
        return r;
    }
    // Only the last update of a task in a batch matters.
    std::map<int64_t, size_t> last_update;
    for (size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].kind == Op::Kind::update_task) {
            last_update[batch[i].row.id] = i;
        }
    }
    common::Result<void> result;
    for (size_t i = 0; i < batch.size() && result; ++i) {
        Op& op = batch[i];
        switch (op.kind) {
            case Op::Kind::insert_environment:
                sqlite3_reset(env_stmt_);
                sqlite3_bind_int64(env_stmt_, 1, op.row.id);
                sqlite3_bind_text(env_stmt_, 2, op.row.spec.c_str(), static_cast<int>(op.row.spec.size()),
                                  SQLITE_STATIC);
                if (sqlite3_step(env_stmt_) != SQLITE_DONE) {
                    result = std::unexpected(db_error("write environment " + std::to_string(op.row.id)));
                }
                break;
            case Op::Kind::insert_task:
                result = bind_row_and_step(insert_stmt_, op.row, true);
                break;
            case Op::Kind::update_task:
                if (last_update[op.row.id] == i) {
                    result = bind_row_and_step(update_stmt_, op.row, false);
                }
                break;
            case Op::Kind::set_pool:
                sqlite3_reset(pool_stmt_);
                sqlite3_bind_text(pool_stmt_, 1, op.pool.c_str(), -1, SQLITE_TRANSIENT);
                sqlite3_bind_int(pool_stmt_, 2, op.workers);
                sqlite3_bind_int(pool_stmt_, 3, op.transient ? 1 : 0);
                if (sqlite3_step(pool_stmt_) != SQLITE_DONE) {
                    result = std::unexpected(db_error("write pool " + op.pool));
                }
                break;
            case Op::Kind::drop_pool:
                sqlite3_reset(drop_pool_stmt_);
                sqlite3_bind_text(drop_pool_stmt_, 1, op.pool.c_str(), -1, SQLITE_TRANSIENT);
                if (sqlite3_step(drop_pool_stmt_) != SQLITE_DONE) {
                    result = std::unexpected(db_error("drop pool " + op.pool));
                }
                break;
        }
    }
    if (result) {
        result = run(commit_stmt_);
    }
    if (!result) {
        (void)run(rollback_stmt_);
    }
    return result;
}

Store::Outcome Store::commit(std::vector<Op> batch) {
    Outcome out;
    out.result = apply(batch);
    if (out.result) {
        ++commits_;
    } else {
        spdlog::error("journal commit of {} writes failed: {}", batch.size(), out.result.error().message());
    }
    // Acknowledged writes learn the outcome. Of a failed commit only the state updates are retried: the
    // inserts belonged to submissions that were just told they failed, and must not come back.
    for (auto& op : batch) {
        if (op.done) {
            out.completions.push_back(std::move(op.done));
        }
        if (!out.result && op.kind == Op::Kind::update_task) {
            out.retry.push_back(std::move(op));
        }
    }
    return out;
}

void Store::flush_on_loop() {
    std::vector<Op> batch;
    {
        std::lock_guard lock(mutex_);
        flush_posted_ = false;
        batch.reserve(queue_.size());
        for (auto& op : queue_) {
            batch.push_back(std::move(op));
        }
        queue_.clear();
    }
    if (batch.empty()) {
        return;
    }
    Outcome out = commit(std::move(batch));
    for (const auto& done : out.completions) {
        done(out.result);
    }
    if (!out.retry.empty()) {
        std::lock_guard lock(mutex_);
        for (auto it = out.retry.rbegin(); it != out.retry.rend(); ++it) {
            queue_.push_front(std::move(*it));
        }
        if (stopping_) {
            spdlog::error("dropping {} journal updates at shutdown after a failed commit", queue_.size());
            queue_.clear();
        } else if (!flush_posted_) {
            // Try again in a second (a full disk may have room by then); new writes join that commit.
            flush_posted_ = true;
            auto timer = std::make_shared<asio::steady_timer>(*loop_, std::chrono::seconds(1));
            timer->async_wait([this, timer](const std::error_code&) { flush_on_loop(); });
        }
    }
}

int Store::on_wal_commit(void* self, sqlite3*, const char*, int pages) {
    auto* store = static_cast<Store*>(self);
    // A passive checkpoint racing with a stream of commits rarely empties the WAL, so it stays above the
    // threshold: asking at every commit would wake the checkpointer once per commit (measured: ~one wake
    // per two tasks under load). Ask again only when the WAL has grown by another quarter threshold, or
    // after it was restarted. (Only the one thread that commits runs this hook.)
    if (pages < store->checkpoint_requested_at_) {
        store->checkpoint_requested_at_ = 0;  // the WAL started over
    }
    if (pages >= k_checkpoint_pages && pages >= store->checkpoint_requested_at_ + k_checkpoint_pages / 4) {
        store->checkpoint_requested_at_ = pages;
        {
            std::lock_guard lock(store->mutex_);
            store->checkpoint_wanted_ = true;
        }
        store->wake_.notify_all();
    }
    return SQLITE_OK;
}

void Store::checkpointer_loop() {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
        spdlog::error("checkpointer: cannot open {}: {}", path_,
                      db != nullptr ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close_v2(db);
        return;
    }
    sqlite3_busy_timeout(db, 1000);
    // A connection that has not read the database yet does not know it is in WAL mode, and its checkpoints
    // do nothing (they report -1 pages): read the schema once.
    if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) != SQLITE_OK) {
        spdlog::warn("checkpointer: {}", sqlite3_errmsg(db));
    }
    // Once asked, it keeps checkpointing every k_checkpoint_retry until a round finds the WAL quiet and
    // wholly copied: only then does the next commit start the WAL over. Stopping at the first round
    // would leave the frames of the last commits of a burst uncopied, and the WAL would grow with every
    // burst for as long as the daemon runs (measured: ~2 KB per task).
    bool polling = false;
    int last_log_pages = -1;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            auto wanted = [this] {
                return stopping_ || checkpoint_wanted_;
            };
            if (polling) {
                wake_.wait_for(lock, k_checkpoint_retry, wanted);
            } else {
                wake_.wait(lock, wanted);
            }
            if (stopping_) {
                break;
            }
            checkpoint_wanted_ = false;
        }
        // PASSIVE never blocks the loop's commits; what it cannot copy now, the next round will.
        int log_pages = 0;
        int copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
            spdlog::warn("checkpoint: {}", sqlite3_errmsg(db));
        }
        bool quiet = rc == SQLITE_OK && copied == log_pages && log_pages == last_log_pages;
        polling = !quiet;
        last_log_pages = log_pages;
    }
    sqlite3_close_v2(db);
}

void Store::writer_loop() {
    for (;;) {
        std::vector<Op> batch;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty() && stopping_) {
                return;
            }
            batch.reserve(queue_.size());
            for (auto& op : queue_) {
                batch.push_back(std::move(op));
            }
            queue_.clear();
        }
        Outcome out = commit(std::move(batch));
        if (!out.completions.empty() && loop_ != nullptr) {
            asio::post(*loop_, [completions = std::move(out.completions), result = out.result]() {
                for (const auto& done : completions) {
                    done(result);
                }
            });
        }
        if (!out.retry.empty()) {
            std::unique_lock lock(mutex_);
            for (auto it = out.retry.rbegin(); it != out.retry.rend(); ++it) {
                queue_.push_front(std::move(*it));
            }
            if (stopping_) {
                spdlog::error("dropping {} journal updates at shutdown after a failed commit", queue_.size());
                queue_.clear();
                return;
            }
            wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
        }
    }
}

}  // namespace mpctl::daemon
