// Store: what start-up reads back from the journal, before the loop runs.

#include <optional>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <mpctl/daemon/store/sqlite_util.hpp>
#include <mpctl/daemon/store/store.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

namespace {

// Moves R's value into OUT; its error, if it has one.
template <class T>
std::optional<common::Error> into(common::Result<T> r, T& out) {
    if (!r) {
        return r.error();
    }
    out = std::move(*r);
    return std::nullopt;
}

}  // namespace

common::Result<Store::Contents> Store::load() {
    Contents c;
    // In order, stopping at the first failure: after a damaged table, reading the next ones is waste.
    if (auto e = into(load_pools(), c.pools)) {
        return std::unexpected(*e);
    }
    if (auto e = into(load_tasks(), c.tasks)) {
        return std::unexpected(*e);
    }
    if (auto e = into(load_environments(), c.environments)) {
        return std::unexpected(*e);
    }
    if (auto e = into(load_next_task_id(), c.next_task_id)) {
        return std::unexpected(*e);
    }
    if (auto e = into(load_next_environment_id(), c.next_environment_id)) {
        return std::unexpected(*e);
    }
    if (auto e = into(load_meta_int("next_lock_token", 1), c.next_lock_token)) {
        return std::unexpected(*e);
    }
    if (auto e = into(load_segments(), c.segments)) {
        return std::unexpected(*e);
    }
    auto in_journal = [&](common::Error e) {
        return common::plain_error("journal " + path_ + ": " + e.message(), e.code);
    };
    if (auto e = into(load_queue_rows(db_), c.queues)) {
        return std::unexpected(in_journal(*e));
    }
    if (auto e = into(load_dict_rows(db_), c.dicts)) {
        return std::unexpected(in_journal(*e));
    }
    if (auto e = into(load_token_rows(db_), c.tokens)) {
        return std::unexpected(in_journal(*e));
    }
    return c;
}

common::Result<std::vector<Task>> Store::load_tasks() {
    sqlite::Query q(db_, k_select_tasks_sql);
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "journal " + path_ + ": reading tasks"));
    }
    std::vector<Task> tasks;
    int rc = 0;
    while ((rc = q.step()) == SQLITE_ROW) {
        if (auto t = read_task(q.get())) {
            tasks.push_back(std::move(*t));
        }
    }
    if (rc != SQLITE_DONE) {
        return std::unexpected(sqlite::error(db_, "journal " + path_ + ": reading tasks"));
    }
    return tasks;
}

common::Result<std::map<std::string, Store::PoolRow>> Store::load_pools() {
    sqlite::Query q(
        db_, "SELECT name, workers, transient, coalesce(worker, ''), coalesce(backend, '') FROM pools");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "journal " + path_ + ": reading pools"));
    }
    std::map<std::string, PoolRow> pools;
    int rc = 0;
    while ((rc = q.step()) == SQLITE_ROW) {
        pools[sqlite::column_text(q.get(), 0)] =
            PoolRow{sqlite3_column_int(q.get(), 1), sqlite3_column_int(q.get(), 2) != 0,
                    sqlite::column_text(q.get(), 3), sqlite::column_text(q.get(), 4)};
    }
    // Not a partial list: the pools after a damaged row would silently go back to their configured size.
    if (rc != SQLITE_DONE) {
        return std::unexpected(sqlite::error(db_, "journal " + path_ + ": reading pools"));
    }
    return pools;
}

common::Result<std::map<int64_t, std::shared_ptr<const proto::Environment>>> Store::load_environments() {
    sqlite::Query q(
        db_,
        "SELECT id, env FROM environments WHERE id IN "
        "(SELECT env_id FROM tasks WHERE state IN ('pending', 'running') AND env_id IS NOT NULL)");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "journal " + path_ + ": reading environments"));
    }
    std::map<int64_t, std::shared_ptr<const proto::Environment>> envs;
    int rc = 0;
    while ((rc = q.step()) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q.get(), 0);
        try {
            auto parsed = proto::parse_json_text(sqlite::column_text(q.get(), 1));
            if (parsed.is_discarded()) {
                throw std::runtime_error("not JSON");
            }
            auto env = parsed.get<proto::Environment>();
            envs.emplace(id, std::make_shared<const proto::Environment>(std::move(env)));
        } catch (const std::exception& e) {
            spdlog::error("environment {}: unreadable journal row, skipped: {}", id, e.what());
        }
    }
    if (rc != SQLITE_DONE) {
        return std::unexpected(sqlite::error(db_, "journal " + path_ + ": reading environments"));
    }
    return envs;
}

// Like task ids (below): meta.next_environment_id is the high-water mark of a journal that lost rows (one
// `mpctld --recover` salvaged), so that a new environment never takes the id a salvaged task refers to.
common::Result<int64_t> Store::load_next_environment_id() {
    sqlite::Query q(
        db_,
        "SELECT max(coalesce((SELECT max(id) FROM environments), 0) + 1, "
        "coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'next_environment_id'), 1))");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "journal " + path_ + ": reading the next environment id"));
    }
    return q.step() == SQLITE_ROW ? sqlite3_column_int64(q.get(), 0) : 1;
}

// meta.next_task_id is where anything that deletes or loses rows (`mpctl remove` and `clean`, `mpctld
// --recover`) records the high-water mark, so that ids are never reused.
common::Result<int64_t> Store::load_next_task_id() {
    sqlite::Query q(db_,
                    "SELECT max(coalesce((SELECT max(id) FROM tasks), 0) + 1, "
                    "coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'next_task_id'), 1))");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "journal " + path_ + ": reading the next task id"));
    }
    return q.step() == SQLITE_ROW ? sqlite3_column_int64(q.get(), 0) : 1;
}

common::Result<int64_t> Store::load_meta_int(const char* key, int64_t fallback) {
    sqlite::Query q(db_, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "journal " + path_ + ": reading meta." + key));
    }
    sqlite3_bind_text(q.get(), 1, key, -1, SQLITE_STATIC);
    return q.step() == SQLITE_ROW ? sqlite3_column_int64(q.get(), 0) : fallback;
}

common::Result<std::vector<SegmentRow>> Store::load_segments() {
    sqlite::Query q(db_,
                    "SELECT name, dev, ino, size, mode, created_at, coalesce(lease, ''), coalesce(pid, 0), "
                    "coalesce(pid_start, 0), coalesce(expires_at, 0) FROM segments ORDER BY name");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "journal " + path_ + ": reading segments"));
    }
    std::vector<SegmentRow> rows;
    int rc = 0;
    while ((rc = q.step()) == SQLITE_ROW) {
        SegmentRow r;
        r.name = sqlite::column_text(q.get(), 0);
        r.dev = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 1));
        r.ino = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 2));
        r.size = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 3));
        r.mode = static_cast<uint32_t>(sqlite3_column_int64(q.get(), 4));
        r.created_at_ms = sqlite3_column_int64(q.get(), 5);
        r.lease = sqlite::column_text(q.get(), 6);
        r.pid = sqlite3_column_int64(q.get(), 7);
        r.pid_start = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 8));
        r.expires_at_ms = sqlite3_column_int64(q.get(), 9);
        rows.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) {
        return std::unexpected(sqlite::error(db_, "journal " + path_ + ": reading segments"));
    }
    return rows;
}

}  // namespace mpctl::daemon
