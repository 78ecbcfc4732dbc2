#pragma once
// What the journal's unit tests (test_store*.cpp) share: a loop to run completions on, opening, writing and
// reading back a Store, and raw SQL on its file. Writes go through a real io_context, and a fresh
// Store::open on the same file must see them.

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <mpctl/daemon/store/store.hpp>
#include <mpctl/daemon/tasks/environments.hpp>
#include <mpctl/daemon/tasks/task.hpp>
#include <mpctl/proto/task_spec.hpp>

#include "temp_dir.hpp"

namespace mpctl::test::store {

using mpctl::common::Result;
using mpctl::daemon::Durability;
using mpctl::daemon::Environments;
using mpctl::daemon::FailReason;
using mpctl::daemon::Store;
using mpctl::daemon::Task;
using mpctl::daemon::TaskState;
using nlohmann::json;

// The daemon's loop: runs until a condition holds. The deadline only keeps a broken store from hanging
// the test run; nothing here depends on how long a commit takes.
struct Loop {
    bool run_until(const std::function<bool()>& done) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            io.run_for(std::chrono::milliseconds(10));
        }
        return true;
    }

    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
};

inline std::unique_ptr<Store> open_store(const std::string& path, Durability durability) {
    auto store = Store::open(path, durability);
    if (!store) {
        FAIL("Store::open failed: " << store.error().message());
    }
    return std::move(*store);
}

inline Result<void> insert(Store& store, Loop& loop, const std::vector<const Task*>& tasks,
                           const std::vector<Environments::Entry>& envs = {}) {
    std::optional<Result<void>> result;
    store.insert_tasks(tasks, envs, [&](Result<void> r) { result = std::move(r); });
    REQUIRE(loop.run_until([&] { return result.has_value(); }));
    return *result;
}

// A journal at PATH (made if missing) that holds TASKS, closed again: what a test then changes by hand
// or opens as a later daemon would.
inline void journal_with(const std::string& path, const std::vector<const Task*>& tasks,
                         Durability durability = Durability::normal) {
    Loop loop;
    auto store = open_store(path, durability);
    store->start(loop.io);
    REQUIRE(insert(*store, loop, tasks));
    store->stop();
}

// Journals T, then CHANGE(store, t) (updates nobody waits for, which stop() commits), and returns the one
// task a journal reopened at PATH loads.
template <class Change>
Task journaled_after(const std::string& path, Task t, Change change) {
    {
        Loop loop;
        auto store = open_store(path, Durability::normal);
        store->start(loop.io);
        REQUIRE(insert(*store, loop, {&t}));
        change(*store, t);
        store->stop();
    }
    auto tasks = open_store(path, Durability::normal)->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    return tasks->front();
}

inline Result<void> set_pool(Store& store, Loop& loop, const std::string& name, int workers,
                             bool transient = false) {
    std::optional<Result<void>> result;
    store.set_pool(
        name, workers, [&](Result<void> r) { result = std::move(r); }, transient);
    REQUIRE(loop.run_until([&] { return result.has_value(); }));
    return *result;
}

// Writes pools with WRITE (a started store and its loop), then reads them back from a reopened journal.
template <class Write>
std::map<std::string, Store::PoolRow> pools_after(const std::string& path, Durability durability,
                                                  Write write) {
    {
        Loop loop;
        auto store = open_store(path, durability);
        store->start(loop.io);
        write(*store, loop);
        store->stop();
    }
    auto pools = open_store(path, durability)->load_pools();
    REQUIRE(pools);
    return *pools;
}

inline Task make_task(int64_t id, const json& spec) {
    Task t;
    t.id = id;
    t.spec = mpctl::daemon::CompactSpec(mpctl::proto::parse_task_spec(spec), nullptr);
    t.submitted_at_ms = 1795552626123 + id;
    return t;
}

// Runs raw SQL on the database file with a connection of its own.
// The tables of schema version 1, as the first mpctld wrote them: no environments table, no env_id, outcome
// or transient column.
inline constexpr const char* k_schema_v1_tables =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE tasks (id INTEGER PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,"
    " exit_code INTEGER, signal INTEGER, submitted_at INTEGER NOT NULL, started_at INTEGER,"
    " finished_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0, pid INTEGER, error TEXT);"
    "CREATE TABLE pools (name TEXT PRIMARY KEY, workers INTEGER NOT NULL);";

inline void raw_sql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* message = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
    std::string text = message != nullptr ? message : "";
    sqlite3_free(message);
    sqlite3_close(db);
    INFO(text);
    REQUIRE(rc == SQLITE_OK);
}

inline const Task* find(const std::vector<Task>& tasks, int64_t id) {
    for (const auto& t : tasks) {
        if (t.id == id) {
            return &t;
        }
    }
    return nullptr;
}

inline const char* name_of(Durability d) {
    return d == Durability::full ? "full" : "normal";
}

}  // namespace mpctl::test::store
