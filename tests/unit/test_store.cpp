// The SQLite journal through its public interface: writes go through a real io_context, and a fresh
// Store::open on the same file must see them. Both durabilities run the same cases.

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

#include "unit_temp_dir.hpp"

using mpctl::common::Result;
using mpctl::daemon::Durability;
using mpctl::daemon::Environments;
using mpctl::daemon::FailReason;
using mpctl::daemon::Store;
using mpctl::daemon::Task;
using mpctl::daemon::TaskState;
using nlohmann::json;

namespace {

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

std::unique_ptr<Store> open_store(const std::string& path, Durability durability) {
    auto store = Store::open(path, durability);
    if (!store) {
        FAIL("Store::open failed: " << store.error().message());
    }
    return std::move(*store);
}

Result<void> insert(Store& store, Loop& loop, const std::vector<const Task*>& tasks,
                    const std::vector<Environments::Entry>& envs = {}) {
    std::optional<Result<void>> result;
    store.insert_tasks(tasks, envs, [&](Result<void> r) { result = std::move(r); });
    REQUIRE(loop.run_until([&] { return result.has_value(); }));
    return *result;
}

Result<void> set_pool(Store& store, Loop& loop, const std::string& name, int workers,
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

Task make_task(int64_t id, const json& spec) {
    Task t;
    t.id = id;
    t.spec = mpctl::proto::parse_task_spec(spec);
    t.submitted_at_ms = 1795552626123 + id;
    return t;
}

// Runs raw SQL on the database file with a connection of its own.
void raw_sql(const std::string& path, const std::string& sql) {
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

const Task* find(const std::vector<Task>& tasks, int64_t id) {
    for (const auto& t : tasks) {
        if (t.id == id) {
            return &t;
        }
    }
    return nullptr;
}

const char* name_of(Durability d) {
    return d == Durability::full ? "full" : "normal";
}

}  // namespace

TEST_CASE("a new journal is empty and starts task ids at 1", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    auto store = open_store(dir / "mpctl.db", durability);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    CHECK(tasks->empty());
    auto pools = store->load_pools();
    REQUIRE(pools);
    CHECK(pools->empty());
    CHECK(store->load_next_task_id() == 1);
    CHECK(store->load_next_environment_id() == 1);
}

TEST_CASE("inserted tasks come back from a fresh open with their spec, state and times", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    const std::string path = dir / "mpctl.db";

    Task full = make_task(1, {{"argv", {"make", "-j4", "it's \"quoted\""}},
                              {"cwd", "/src"},
                              {"name", "build \xC3\xA9t\xC3\xA9"},
                              {"labels", {{"team", "infra"}, {"k", ""}}},
                              {"stdin", "in.txt"},
                              {"timeout", 30.5},
                              {"kill_after", 0},
                              {"retries", 3},
                              {"retry_delay", 0.25},
                              {"after", {7}},
                              {"pool", "gpu"},
                              {"priority", -4}});
    full.state = TaskState::failed;
    full.reason = FailReason::exit;
    full.exit_code = 3;
    full.started_at_ms = full.submitted_at_ms + 10;
    full.finished_at_ms = full.submitted_at_ms + 2500;
    full.attempts = 4;
    full.error = "exit code 3";

    Task running = make_task(2, {{"shell", "sleep 100 | cat"}});
    running.state = TaskState::running;
    running.started_at_ms = running.submitted_at_ms + 1;
    running.pid = 4242;
    running.attempts = 1;

    Task killed = make_task(3, {{"argv", {"crash"}}});
    killed.state = TaskState::failed;
    killed.reason = FailReason::signal;
    killed.signal = 9;
    killed.finished_at_ms = 5;

    Task pending = make_task(4, {{"argv", {"later"}}});

    {
        Loop loop;
        auto store = open_store(path, durability);
        store->start(loop.io);
        auto r = insert(*store, loop, {&full, &running, &killed, &pending});
        INFO((r ? std::string() : r.error().message()));
        REQUIRE(r);
        store->stop();
    }

    auto store = open_store(path, durability);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 4);
    CHECK((*tasks)[0].id == 1);
    CHECK((*tasks)[3].id == 4);

    const Task* a = find(*tasks, 1);
    REQUIRE(a != nullptr);
    CHECK(a->state == TaskState::failed);
    CHECK(a->reason == FailReason::exit);
    CHECK(a->exit_code == 3);
    CHECK_FALSE(a->signal);
    CHECK(a->submitted_at_ms == full.submitted_at_ms);
    CHECK(a->started_at_ms == full.started_at_ms);
    CHECK(a->finished_at_ms == full.finished_at_ms);
    CHECK(a->attempts == 4);
    CHECK_FALSE(a->pid);
    CHECK(a->error == std::optional<std::string>("exit code 3"));
    CHECK(a->spec.argv == full.spec.argv);
    CHECK_FALSE(a->spec.shell);
    CHECK(a->spec.cwd == "/src");
    CHECK(a->spec.name == full.spec.name);
    CHECK(a->spec.labels == full.spec.labels);
    CHECK(a->spec.stdin_path == std::optional<std::string>("/src/in.txt"));
    CHECK(a->spec.timeout_s == full.spec.timeout_s);
    CHECK(a->spec.kill_after_s == 0.0);
    CHECK(a->spec.retries == 3);
    CHECK(a->spec.retry_delay_s == 0.25);
    CHECK(a->spec.after == std::vector<int64_t>{7});
    CHECK(a->spec.pool == "gpu");
    CHECK(a->spec.priority == -4);
    CHECK(mpctl::proto::to_json(a->spec) == mpctl::proto::to_json(full.spec));

    const Task* b = find(*tasks, 2);
    REQUIRE(b != nullptr);
    CHECK(b->state == TaskState::running);
    CHECK(b->reason == FailReason::none);
    CHECK(b->pid == 4242);
    CHECK(b->started_at_ms == running.started_at_ms);
    CHECK_FALSE(b->finished_at_ms);
    CHECK_FALSE(b->error);
    REQUIRE(b->spec.shell);
    CHECK(*b->spec.shell == "sleep 100 | cat");
    CHECK(b->spec.argv.empty());

    const Task* c = find(*tasks, 3);
    REQUIRE(c != nullptr);
    CHECK(c->reason == FailReason::signal);
    CHECK(c->signal == 9);
    CHECK_FALSE(c->exit_code);
    CHECK(c->finished_at_ms == 5);

    const Task* d = find(*tasks, 4);
    REQUIRE(d != nullptr);
    CHECK(d->state == TaskState::pending);
    CHECK(d->reason == FailReason::none);
    CHECK(d->attempts == 0);
    CHECK_FALSE(d->started_at_ms);
    CHECK(d->spec.pool == "default");

    CHECK(store->load_next_task_id() == 5);
}

TEST_CASE("task updates are journaled and the latest one wins", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    const std::string path = dir / "mpctl.db";
    Task t = make_task(1, {{"argv", {"job"}}});
    {
        Loop loop;
        auto store = open_store(path, durability);
        store->start(loop.io);
        REQUIRE(insert(*store, loop, {&t}));

        t.state = TaskState::running;
        t.attempts = 1;
        t.pid = 77;
        t.started_at_ms = t.submitted_at_ms + 3;
        store->update_task(t);
        t.state = TaskState::failed;
        t.reason = FailReason::timeout;
        t.signal = 15;
        t.pid.reset();
        t.finished_at_ms = t.submitted_at_ms + 9;
        t.error = "timed out";
        store->update_task(t);
        // Writes commit in order: once this one is done, the updates before it are too.
        REQUIRE(set_pool(*store, loop, "sync", 1));
        store->stop();
    }
    auto store = open_store(path, durability);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    const Task& r = tasks->front();
    CHECK(r.state == TaskState::failed);
    CHECK(r.reason == FailReason::timeout);
    CHECK(r.signal == 15);
    CHECK_FALSE(r.pid);
    CHECK(r.attempts == 1);
    CHECK(r.started_at_ms == t.started_at_ms);
    CHECK(r.finished_at_ms == t.finished_at_ms);
    CHECK(r.error == std::optional<std::string>("timed out"));
    CHECK(r.spec.argv == std::vector<std::string>{"job"});
}

TEST_CASE("stop commits the updates still queued", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    const std::string path = dir / "mpctl.db";
    Task t = make_task(1, {{"argv", {"job"}}});
    {
        Loop loop;
        auto store = open_store(path, durability);
        store->start(loop.io);
        REQUIRE(insert(*store, loop, {&t}));
        t.state = TaskState::succeeded;
        t.exit_code = 0;
        t.finished_at_ms = t.submitted_at_ms + 1;
        store->update_task(t);
        store->stop();  // without running the loop again
    }
    auto store = open_store(path, durability);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    CHECK(tasks->front().state == TaskState::succeeded);
    CHECK(tasks->front().exit_code == 0);
}

TEST_CASE("pool sizes are journaled, the latest size per pool wins", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    auto pools = pools_after(dir / "mpctl.db", durability, [](Store& store, Loop& loop) {
        REQUIRE(set_pool(store, loop, "gpu", 2));
        REQUIRE(set_pool(store, loop, "default", 8));
        REQUIRE(set_pool(store, loop, "gpu", 4));
    });
    std::map<std::string, int> sizes;
    for (const auto& [name, row] : pools) {
        sizes[name] = row.workers;
        CHECK_FALSE(row.transient);
    }
    CHECK(sizes == std::map<std::string, int>{{"default", 8}, {"gpu", 4}});
}

TEST_CASE("transient pools are journaled as such until dropped; dropping never touches other pools",
          "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    auto pools = pools_after(dir / "mpctl.db", durability, [](Store& store, Loop& loop) {
        REQUIRE(set_pool(store, loop, "gpu", 2));
        REQUIRE(set_pool(store, loop, "map-1", 3, true));
        REQUIRE(set_pool(store, loop, "map-2", 4, true));
        store.drop_transient_pool("map-1");
        store.drop_transient_pool("gpu");  // not transient: stays
    });
    REQUIRE(pools.size() == 2);
    CHECK(pools.at("gpu").workers == 2);
    CHECK_FALSE(pools.at("gpu").transient);
    CHECK(pools.at("map-2").workers == 4);
    CHECK(pools.at("map-2").transient);
}

TEST_CASE("environments are journaled once and loaded for unfinished tasks", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    const std::string path = dir / "mpctl.db";
    auto env_a = std::make_shared<const mpctl::proto::Environment>(
        mpctl::proto::Environment{{"PATH", "/bin"}, {"LANG", "C.UTF-8"}, {"EQ", "a=b"}});
    auto env_b = std::make_shared<const mpctl::proto::Environment>(mpctl::proto::Environment{{"ONLY", "b"}});

    Task pending = make_task(1, {{"argv", {"a"}}});
    pending.env_id = 3;
    Task running = make_task(2, {{"argv", {"b"}}});
    running.state = TaskState::running;
    running.env_id = 3;
    Task done = make_task(3, {{"argv", {"c"}}});
    done.state = TaskState::succeeded;
    done.env_id = 5;
    Task own = make_task(4, {{"argv", {"d"}}});  // the daemon's environment
    {
        Loop loop;
        auto store = open_store(path, durability);
        store->start(loop.io);
        REQUIRE(insert(*store, loop, {&pending, &running, &done, &own},
                       {Environments::Entry{3, env_a}, Environments::Entry{5, env_b}}));
        store->stop();
    }
    auto store = open_store(path, durability);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 4);
    CHECK(find(*tasks, 1)->env_id == 3);
    CHECK(find(*tasks, 2)->env_id == 3);
    CHECK(find(*tasks, 3)->env_id == 5);
    CHECK(find(*tasks, 4)->env_id == 0);
    for (const auto& t : *tasks) {
        CHECK_FALSE(t.spec.env);  // the spec row carries no environment
    }
    auto envs = store->load_environments();
    REQUIRE(envs);
    REQUIRE(envs->size() == 1);  // only the one unfinished tasks use
    REQUIRE(envs->contains(3));
    CHECK(*envs->at(3) == *env_a);
    CHECK(store->load_next_environment_id() == 6);
}

TEST_CASE("a commit that fails reports the failure and keeps none of its writes", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    const std::string path = dir / "mpctl.db";
    Task first = make_task(1, {{"argv", {"first"}}});
    Task fresh = make_task(2, {{"argv", {"fresh"}}});
    Task clash = make_task(1, {{"argv", {"clash"}}});  // the same id again: the INSERT must fail
    {
        Loop loop;
        auto store = open_store(path, durability);
        store->start(loop.io);
        REQUIRE(insert(*store, loop, {&first}));
        auto r = insert(*store, loop, {&fresh, &clash});
        CHECK_FALSE(r);
        // The journal stays usable.
        Task next = make_task(3, {{"argv", {"next"}}});
        CHECK(insert(*store, loop, {&next}));
        store->stop();
    }
    auto store = open_store(path, durability);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    std::vector<int64_t> ids;
    for (const auto& t : *tasks) {
        ids.push_back(t.id);
    }
    CHECK(ids == std::vector<int64_t>{1, 3});  // 2 was in the failed commit
    REQUIRE(find(*tasks, 1) != nullptr);
    CHECK(find(*tasks, 1)->spec.argv == std::vector<std::string>{"first"});
}

TEST_CASE("a journal written by a newer mpctld is refused", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    const std::string path = dir / "mpctl.db";
    { open_store(path, Durability::normal); }
    raw_sql(path, "PRAGMA user_version=99");
    auto store = Store::open(path, Durability::normal);
    REQUIRE_FALSE(store);
    CHECK(store.error().message().find("newer") != std::string::npos);
}

TEST_CASE("opening a journal records its schema version", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    const std::string path = dir / "mpctl.db";
    { open_store(path, Durability::full); }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    int version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    CHECK(version >= 1);
    // And it opens again.
    CHECK(Store::open(path, Durability::full));
}

TEST_CASE("a file that is not a database is refused", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    const std::string path = dir / "mpctl.db";
    {
        std::FILE* f = std::fopen(path.c_str(), "w");
        REQUIRE(f != nullptr);
        std::fputs("this is not an SQLite database, not even close, but long enough to have a header\n", f);
        std::fclose(f);
    }
    CHECK_FALSE(Store::open(path, Durability::normal));
}

TEST_CASE("a database in a missing directory is refused", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    CHECK_FALSE(Store::open(dir / "no/such/dir/mpctl.db", Durability::full));
}

TEST_CASE("a journal row with an unreadable spec is skipped, the others load", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    const std::string path = dir / "mpctl.db";
    Task a = make_task(1, {{"argv", {"a"}}});
    Task b = make_task(2, {{"argv", {"b"}}});
    {
        Loop loop;
        auto store = open_store(path, Durability::normal);
        store->start(loop.io);
        REQUIRE(insert(*store, loop, {&a, &b}));
        store->stop();
    }
    raw_sql(path, "UPDATE tasks SET spec = '{not json' WHERE id = 1");
    auto store = open_store(path, Durability::normal);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    CHECK(tasks->front().id == 2);
    // Its id is still taken.
    CHECK(store->load_next_task_id() == 3);
}

TEST_CASE("the next task id never goes below a recorded high-water mark", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    const std::string path = dir / "mpctl.db";
    Task a = make_task(5, {{"argv", {"a"}}});
    {
        Loop loop;
        auto store = open_store(path, Durability::full);
        store->start(loop.io);
        REQUIRE(insert(*store, loop, {&a}));
        store->stop();
    }
    {
        auto store = open_store(path, Durability::full);
        CHECK(store->load_next_task_id() == 6);
    }
    raw_sql(path, "INSERT INTO meta (key, value) VALUES ('next_task_id', '100')");
    {
        auto store = open_store(path, Durability::full);
        CHECK(store->load_next_task_id() == 100);
    }
    raw_sql(path, "UPDATE meta SET value = '3' WHERE key = 'next_task_id'");
    auto store = open_store(path, Durability::full);
    CHECK(store->load_next_task_id() == 6);
}

TEST_CASE("every write of a burst completes and is journaled", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    Loop loop;
    auto store = open_store(dir / "mpctl.db", durability);
    store->start(loop.io);
    std::vector<Task> tasks;
    for (int64_t id = 1; id <= 200; ++id) {
        tasks.push_back(make_task(id, {{"argv", {"t"}}}));
    }
    int done = 0;
    int failed = 0;
    for (const auto& t : tasks) {
        store->insert_tasks({&t}, {}, [&](Result<void> r) {
            if (r) {
                ++done;
            } else {
                ++failed;
            }
        });
    }
    REQUIRE(loop.run_until([&] { return done + failed == 200; }));
    CHECK(failed == 0);
    CHECK(store->commit_count() >= 1);
    CHECK(store->commit_count() <= 200);
    if (durability == Durability::normal) {
        // Everything queued while the loop was busy goes into one commit.
        CHECK(store->commit_count() == 1);
    }
    store->stop();
    auto reopened = open_store(dir / "mpctl.db", durability);
    auto loaded = reopened->load_tasks();
    REQUIRE(loaded);
    CHECK(loaded->size() == 200);
}

TEST_CASE("a journal of schema version 1 is upgraded and its tasks load", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    const std::string path = dir / "mpctl.db";
    // What the first mpctld wrote: no environments table, no env_id column.
    raw_sql(
        path,
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE tasks (id INTEGER PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,"
        " exit_code INTEGER, signal INTEGER, submitted_at INTEGER NOT NULL, started_at INTEGER,"
        " finished_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0, pid INTEGER, error TEXT);"
        "CREATE TABLE pools (name TEXT PRIMARY KEY, workers INTEGER NOT NULL);"
        "INSERT INTO tasks (id, spec, state, submitted_at) VALUES"
        " (7, '{\"argv\":[\"echo\",\"old\"],\"cwd\":\"/\",\"env\":{\"A\":\"1\"}}', 'pending', 1000);"
        "INSERT INTO pools VALUES ('gpu', 3);"
        "PRAGMA user_version=1;");
    auto store = open_store(path, Durability::normal);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    CHECK(tasks->front().id == 7);
    CHECK(tasks->front().spec.argv == std::vector<std::string>{"echo", "old"});
    // A version-1 row kept its environment in the spec itself.
    REQUIRE(tasks->front().spec.env);
    CHECK(tasks->front().spec.env->at("A") == "1");
    CHECK(tasks->front().env_id == 0);
    CHECK(store->load_pools()->at("gpu").workers == 3);
    CHECK(*store->load_next_task_id() == 8);
    CHECK(*store->load_next_environment_id() == 1);
}

TEST_CASE("with durability normal an acknowledged insert commits at once and not after the update delay",
          "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    Loop loop;
    auto store = open_store(dir / "mpctl.db", Durability::normal);
    store->start(loop.io);
    Task t = make_task(1, {{"argv", {"true"}}});
    // An unacknowledged update first arms the deferred flush; the insert must not wait for it.
    store->update_task(t);
    std::optional<Result<void>> result;
    store->insert_tasks({&t}, {}, [&](Result<void> r) { result = std::move(r); });
    // poll() runs what is ready now and never waits: a commit parked behind a timer would not be.
    auto before = std::chrono::steady_clock::now();
    loop.io.poll();
    if (std::chrono::steady_clock::now() - before < std::chrono::milliseconds(2)) {
        CHECK(result.has_value());
    }
    REQUIRE(loop.run_until([&] { return result.has_value(); }));
    CHECK(*result);
    store->stop();
}

TEST_CASE("the WAL is checkpointed and stays bounded while commits keep coming", "[unit][store]") {
    mpctl::test::UnitTempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    Loop loop;
    auto store = open_store(dir / "mpctl.db", durability);
    store->start(loop.io);
    const std::string wal = dir / "mpctl.db-wal";
    auto wal_bytes = [&] {
        struct stat st {};
        return ::stat(wal.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
    };
    // Many commits of a few pages each: about 25 MB of WAL frames if nothing were ever checkpointed.
    std::string big(2000, 'x');
    int64_t next = 1;
    int64_t most = 0;
    for (int burst = 0; burst < 40; ++burst) {
        std::vector<Task> tasks;
        for (int i = 0; i < 50; ++i) {
            tasks.push_back(make_task(next++, {{"argv", {"t", big}}}));
        }
        std::vector<const Task*> ptrs;
        for (const auto& t : tasks) {
            ptrs.push_back(&t);
        }
        REQUIRE(insert(*store, loop, ptrs));
        most = std::max(most, wal_bytes());
    }
    // The checkpointer catches up while the commits come (its copies are passive); once it has copied
    // everything, the next commit starts the WAL over and the file is cut back to 4 MiB.
    CHECK(loop.run_until([&] {
        Task t = make_task(next++, {{"argv", {"t"}}});
        return insert(*store, loop, {&t}) && wal_bytes() <= 4 * 1024 * 1024;
    }));
    INFO("largest WAL seen: " << most);
    CHECK(most < 20 * 1024 * 1024);
    store->stop();
}
