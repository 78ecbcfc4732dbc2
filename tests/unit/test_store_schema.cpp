// The SQLite journal through its public interface: failed commits, files it refuses, unreadable rows, id
// high-water marks and schema upgrades. Both durabilities run the same cases.

#include "store_harness.hpp"

using namespace mpctl::test::store;

TEST_CASE("a commit that fails reports the failure and keeps none of its writes", "[unit][store]") {
    mpctl::test::TempDir dir;
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
    CHECK(find(*tasks, 1)->spec.argv() == std::vector<std::string>{"first"});
}

TEST_CASE("a journal written by a newer mpctld is refused", "[unit][store]") {
    mpctl::test::TempDir dir;
    const std::string path = dir / "mpctl.db";
    { open_store(path, Durability::normal); }
    raw_sql(path, "PRAGMA user_version=99");
    auto store = Store::open(path, Durability::normal);
    REQUIRE_FALSE(store);
    CHECK(store.error().message().find("newer") != std::string::npos);
}

TEST_CASE("opening a journal records its schema version", "[unit][store]") {
    mpctl::test::TempDir dir;
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
    mpctl::test::TempDir dir;
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
    mpctl::test::TempDir dir;
    CHECK_FALSE(Store::open(dir / "no/such/dir/mpctl.db", Durability::full));
}

TEST_CASE("a journal row with an unreadable spec is skipped, the others load", "[unit][store]") {
    mpctl::test::TempDir dir;
    const std::string path = dir / "mpctl.db";
    Task a = make_task(1, {{"argv", {"a"}}});
    Task b = make_task(2, {{"argv", {"b"}}});
    journal_with(path, {&a, &b});
    raw_sql(path, "UPDATE tasks SET spec = '{not json' WHERE id = 1");
    auto store = open_store(path, Durability::normal);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    CHECK(tasks->front().id == 2);
    // Its id is still taken.
    CHECK(store->load_next_task_id() == 3);
}

TEST_CASE("a row written with cwd \"\" (for the default cwd) still loads, though \"\" is refused on the wire",
          "[unit][store]") {
    mpctl::test::TempDir dir;
    const std::string path = dir / "mpctl.db";
    Task a = make_task(1, {{"argv", {"a"}}});
    journal_with(path, {&a});
    raw_sql(path, R"(UPDATE tasks SET spec = '{"argv":["a"],"cwd":"","pool":"default"}' WHERE id = 1)");
    auto store = open_store(path, Durability::normal);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    CHECK(tasks->front().spec.cwd().empty());
}

TEST_CASE("the next task id never goes below a recorded high-water mark", "[unit][store]") {
    mpctl::test::TempDir dir;
    const std::string path = dir / "mpctl.db";
    Task a = make_task(5, {{"argv", {"a"}}});
    journal_with(path, {&a}, Durability::full);
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

TEST_CASE("a journal of schema version 1 is upgraded and its tasks load", "[unit][store]") {
    mpctl::test::TempDir dir;
    const std::string path = dir / "mpctl.db";
    // What the first mpctld wrote: no environments table, no env_id column.
    raw_sql(path,
            std::string(k_schema_v1_tables) +
                "INSERT INTO tasks (id, spec, state, submitted_at) VALUES"
                " (7, '{\"argv\":[\"echo\",\"old\"],\"cwd\":\"/\",\"env\":{\"A\":\"1\"}}', 'pending', 1000);"
                "INSERT INTO pools VALUES ('gpu', 3);"
                "PRAGMA user_version=1;");
    auto store = open_store(path, Durability::normal);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    CHECK(tasks->front().id == 7);
    CHECK(tasks->front().spec.argv() == std::vector<std::string>{"echo", "old"});
    // A version-1 row kept its environment in the spec itself.
    REQUIRE(tasks->front().spec.env());
    CHECK(tasks->front().spec.env()->at("A") == "1");
    CHECK(tasks->front().env_id == 0);
    CHECK(store->load_pools()->at("gpu").workers == 3);
    CHECK(*store->load_next_task_id() == 8);
    CHECK(*store->load_next_environment_id() == 1);
}

TEST_CASE("a journal of schema version 8 gets the pid_start column, its running task loads without one",
          "[unit][store]") {
    mpctl::test::TempDir dir;
    const std::string path = dir / "mpctl.db";
    Task t = make_task(1, {{"argv", {"job"}}});
    journal_with(path, {&t});
    // As an mpctld of schema 8 left it: a task running with a pid, and no column for its start time.
    raw_sql(path,
            "ALTER TABLE tasks DROP COLUMN pid_start; ALTER TABLE pools DROP COLUMN backend; "
            "UPDATE tasks SET state = 'running', pid = 4242, "
            "attempts = 1 WHERE id = 1; PRAGMA user_version=8;");
    auto store = open_store(path, Durability::normal);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    CHECK(tasks->front().pid == 4242);
    CHECK(tasks->front().pid_start == 0);  // resume() will say why it cannot re-adopt it
}
