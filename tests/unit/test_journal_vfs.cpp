// The journal's VFS (daemon/store/journal_vfs): its in-process WAL-index locks order the daemon's own
// connections as fcntl locks would, and keep every other process out while one of them is open.

#include <atomic>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <mpctl/daemon/store/sqlite_util.hpp>

#include "temp_dir.hpp"

namespace sqlite = mpctl::daemon::sqlite;

namespace {

sqlite::Db open_journal(const std::string& path, int busy_ms = 0) {
    auto db = sqlite::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, busy_ms);
    REQUIRE(db);
    REQUIRE(sqlite3_exec(db->get(), "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) == SQLITE_OK);
    return std::move(*db);
}

int exec(sqlite3* db, const char* sql) {
    return sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
}

int64_t count(sqlite3* db) {
    sqlite::Query q(db, "SELECT count(*) FROM t");
    REQUIRE(q.ok());
    REQUIRE(sqlite3_step(q.get()) == SQLITE_ROW);
    return sqlite3_column_int64(q.get(), 0);
}

// What a process of its own gets when it reads PATH through SQLite's default VFS (its fcntl locks): the
// result code of a SELECT.
int read_from_another_process(const std::string& path) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        sqlite3* db = nullptr;
        int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
        if (rc == SQLITE_OK) {
            rc = sqlite3_exec(db, "SELECT count(*) FROM t", nullptr, nullptr, nullptr);
        }
        ::_exit(rc & 0xff);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("two connections through the journal VFS take the write lock in turn",
          "[unit][store][journal_vfs]") {
    mpctl::test::TempDir dir;
    auto a = open_journal(dir / "j.db");
    REQUIRE(exec(a.get(), "CREATE TABLE t (x INTEGER)") == SQLITE_OK);
    auto b = open_journal(dir / "j.db");
    REQUIRE(exec(a.get(), "BEGIN IMMEDIATE") == SQLITE_OK);
    CHECK(exec(b.get(), "BEGIN IMMEDIATE") == SQLITE_BUSY);
    REQUIRE(exec(a.get(), "INSERT INTO t VALUES (1); COMMIT") == SQLITE_OK);
    REQUIRE(exec(b.get(), "BEGIN IMMEDIATE") == SQLITE_OK);
    REQUIRE(exec(b.get(), "INSERT INTO t VALUES (2); COMMIT") == SQLITE_OK);
    CHECK(count(a.get()) == 2);
}

TEST_CASE("a reader's snapshot holds while another connection of the process writes and checkpoints",
          "[unit][store][journal_vfs]") {
    mpctl::test::TempDir dir;
    auto reader = open_journal(dir / "j.db");
    REQUIRE(exec(reader.get(), "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)") == SQLITE_OK);
    auto writer = open_journal(dir / "j.db");
    REQUIRE(exec(reader.get(), "BEGIN") == SQLITE_OK);
    REQUIRE(count(reader.get()) == 1);
    for (int i = 0; i < 100; ++i) {
        REQUIRE(exec(writer.get(), "INSERT INTO t SELECT randomblob(3000)") == SQLITE_OK);
    }
    // The reader's read mark keeps the WAL from starting over under it.
    int log = -1;
    int copied = -1;
    CHECK(sqlite3_wal_checkpoint_v2(writer.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &copied) ==
          SQLITE_BUSY);
    REQUIRE(exec(writer.get(), "INSERT INTO t VALUES (3)") == SQLITE_OK);
    CHECK(count(reader.get()) == 1);
    REQUIRE(exec(reader.get(), "COMMIT") == SQLITE_OK);
    CHECK(sqlite3_wal_checkpoint_v2(writer.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &copied) ==
          SQLITE_OK);
    CHECK(log == 0);
    CHECK(count(reader.get()) == 102);
}

TEST_CASE("commits on one thread and checkpoints on another lose nothing", "[unit][store][journal_vfs]") {
    mpctl::test::TempDir dir;
    auto writer = open_journal(dir / "j.db", 5000);
    REQUIRE(exec(writer.get(), "CREATE TABLE t (x INTEGER)") == SQLITE_OK);
    std::atomic<bool> done{false};
    std::atomic<int> checkpoints{0};
    std::thread checkpointer([&] {
        auto db = open_journal(dir / "j.db", 5000);
        while (!done) {
            int log = 0;
            int copied = 0;
            if (sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied) ==
                SQLITE_OK) {
                ++checkpoints;
            }
        }
    });
    constexpr int k_commits = 3000;
    int failed = 0;
    for (int i = 0; i < k_commits; ++i) {
        if (exec(writer.get(), "INSERT INTO t SELECT randomblob(200)") != SQLITE_OK) {
            ++failed;
        }
    }
    done = true;
    checkpointer.join();
    CHECK(failed == 0);
    CHECK(checkpoints > 0);
    CHECK(count(writer.get()) == k_commits);
    sqlite::Query check(writer.get(), "PRAGMA integrity_check");
    REQUIRE(sqlite3_step(check.get()) == SQLITE_ROW);
    CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(check.get(), 0))) == "ok");
}

TEST_CASE("another process cannot read the journal while a connection has it, and can after",
          "[unit][store][journal_vfs]") {
    mpctl::test::TempDir dir;
    {
        auto db = open_journal(dir / "j.db");
        REQUIRE(exec(db.get(), "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)") == SQLITE_OK);
        int rc = read_from_another_process(dir / "j.db");
        INFO(sqlite3_errstr(rc));
        CHECK((rc == SQLITE_BUSY || rc == SQLITE_PROTOCOL));
    }
    CHECK(read_from_another_process(dir / "j.db") == SQLITE_OK);
}
