// Store: what start-up reads back from the journal, before the loop runs.

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <mpctl/daemon/store/sqlite_util.hpp>
#include <mpctl/daemon/store/store.hpp>

namespace mpctl::daemon {

common::Result<std::vector<Task>> Store::load_tasks() {
    sqlite::Query q(db_, k_select_tasks_sql);
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "load tasks"));
    }
    std::vector<Task> tasks;
    int rc = 0;
    while ((rc = q.step()) == SQLITE_ROW) {
        if (auto t = read_task(q.get())) {
            tasks.push_back(std::move(*t));
        }
    }
    if (rc != SQLITE_DONE) {
        return std::unexpected(sqlite::error(db_, "load tasks"));
    }
    return tasks;
}

common::Result<std::map<std::string, Store::PoolRow>> Store::load_pools() {
    sqlite::Query q(db_, "SELECT name, workers, transient FROM pools");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "load pools"));
    }
    std::map<std::string, PoolRow> pools;
    while (q.step() == SQLITE_ROW) {
        pools[sqlite::column_text(q.get(), 0)] =
            PoolRow{sqlite3_column_int(q.get(), 1), sqlite3_column_int(q.get(), 2) != 0};
    }
    return pools;
}

common::Result<std::map<int64_t, std::shared_ptr<const proto::Environment>>> Store::load_environments() {
    sqlite::Query q(
        db_,
        "SELECT id, env FROM environments WHERE id IN "
        "(SELECT env_id FROM tasks WHERE state IN ('pending', 'running') AND env_id IS NOT NULL)");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "load environments"));
    }
    std::map<int64_t, std::shared_ptr<const proto::Environment>> envs;
    while (q.step() == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q.get(), 0);
        try {
            auto env = nlohmann::json::parse(sqlite::column_text(q.get(), 1)).get<proto::Environment>();
            envs.emplace(id, std::make_shared<const proto::Environment>(std::move(env)));
        } catch (const std::exception& e) {
            spdlog::error("environment {}: unreadable journal row, skipped: {}", id, e.what());
        }
    }
    return envs;
}

common::Result<int64_t> Store::load_next_environment_id() {
    sqlite::Query q(db_, "SELECT coalesce(max(id), 0) + 1 FROM environments");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "load next environment id"));
    }
    return q.step() == SQLITE_ROW ? sqlite3_column_int64(q.get(), 0) : 1;
}

// Rows are never deleted today, so max(id) + 1 is enough; meta.next_task_id is where anything that deletes
// rows must record the high-water mark, so that ids are never reused.
common::Result<int64_t> Store::load_next_task_id() {
    sqlite::Query q(db_,
                    "SELECT max(coalesce((SELECT max(id) FROM tasks), 0) + 1, "
                    "coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'next_task_id'), 1))");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db_, "load next id"));
    }
    return q.step() == SQLITE_ROW ? sqlite3_column_int64(q.get(), 0) : 1;
}

}  // namespace mpctl::daemon
