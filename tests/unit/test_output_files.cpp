// OutputLayout: where a task's output files are, and when they are made (on the spot while creating them
// is fast, ahead by a background thread once it was slow).

#include <chrono>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <mpctl/daemon/exec/output_files.hpp>

#include "temp_dir.hpp"

using mpctl::daemon::OutputLayout;
using namespace std::chrono_literals;

namespace {

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// Waits for the background thread, with a deadline generous enough for a loaded machine.
bool eventually_exists(const std::string& path) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!exists(path)) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

std::string read_all(const std::string& path) {
    std::string out;
    FILE* f = std::fopen(path.c_str(), "r");
    REQUIRE(f != nullptr);
    char buf[256];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        out.append(buf, n);
    }
    std::fclose(f);
    return out;
}

}  // namespace

TEST_CASE("output paths are sharded by thousands of task ids", "[unit][output]") {
    mpctl::test::TempDir dir;
    OutputLayout out(dir.path());
    CHECK(out.paths(7).stdout_path == dir / "output/0/7.stdout");
    CHECK(out.paths(1234).stderr_path == dir / "output/1/1234.stderr");
    CHECK(out.stage_stderr_path(1234, 2) == dir / "output/1/1234.2.stderr");
    // An attempt that is not the latest, put aside.
    CHECK(out.paths(7, 2).stdout_path == dir / "output/0/7.attempt-2.stdout");
    CHECK(out.stage_stderr_path(1234, 2, 1) == dir / "output/1/1234.attempt-1.2.stderr");
}

TEST_CASE("a task's files are made in its own shard as ids go from shard to shard and back",
          "[unit][output]") {
    mpctl::test::TempDir dir;
    OutputLayout out(dir.path(), 0);
    for (int64_t id : {7, 1500, 8, 2999, 1501}) {
        CAPTURE(id);
        auto fds = out.open(id);
        REQUIRE(fds);
        std::string text = "out " + std::to_string(id);
        REQUIRE(::write(fds->stdout_fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
        REQUIRE(fds->stderr_fds.size() == 1);
        REQUIRE(::write(fds->stderr_fds[0].get(), "e", 1) == 1);
        CHECK(read_all(out.paths(id).stdout_path) == text);
        CHECK(read_all(out.paths(id).stderr_path) == "e");
    }
    // Its shard's directory deleted under the daemon: the task cannot start, and the error names the file.
    REQUIRE(std::system(("rm -r '" + dir / "output/1" + "'").c_str()) == 0);
    auto lost = out.open(1502);
    REQUIRE_FALSE(lost);
    CHECK(lost.error().message().find(out.paths(1502).stdout_path) != std::string::npos);
}

TEST_CASE("the highest task id with output files is found in the highest shard that has any",
          "[unit][output]") {
    mpctl::test::TempDir dir;
    CHECK(OutputLayout::highest_task_id(dir.path()) == 0);  // no output directory yet
    {
        OutputLayout layout(dir.path(), 0);
        for (int64_t id : {7, 999, 1000, 2500}) {
            REQUIRE(layout.open(id));
        }
        REQUIRE(layout.open(2501, 2));  // a pipeline: 2501.0.stderr, 2501.1.stderr
    }
    CHECK(OutputLayout::highest_task_id(dir.path()) == 2501);
    // An empty shard above (its files removed) does not hide the ones below; stray names are not ids.
    REQUIRE(::mkdir((dir / "output/9").c_str(), 0755) == 0);
    REQUIRE(::mkdir((dir / "output/x").c_str(), 0755) == 0);
    dir.write("output/2/notes.txt", "");
    CHECK(OutputLayout::highest_task_id(dir.path()) == 2501);
}

TEST_CASE("while creating files is fast, a start creates its files and none are made ahead",
          "[unit][output]") {
    mpctl::test::TempDir dir;
    OutputLayout out(dir.path(), 8, std::chrono::hours(1));  // no creation counts as slow
    auto first = out.open(1);
    REQUIRE(first);
    CHECK_FALSE(out.prepares_ahead());

    out.expect(2);
    out.expect(3);
    // Nothing is created for them in the background (give a preparer ample time to show up).
    std::this_thread::sleep_for(50ms);
    CHECK_FALSE(exists(out.paths(2).stdout_path));
    CHECK_FALSE(exists(out.paths(3).stderr_path));

    auto fds = out.open(2);
    REQUIRE(fds);
    REQUIRE(fds->stderr_fds.size() == 1);
    REQUIRE(::write(fds->stdout_fd.get(), "out", 3) == 3);
    REQUIRE(::write(fds->stderr_fds[0].get(), "err", 3) == 3);
    CHECK(read_all(out.paths(2).stdout_path) == "out");
    CHECK(read_all(out.paths(2).stderr_path) == "err");
}

TEST_CASE("a slow creation turns on making the files of queued tasks ahead", "[unit][output]") {
    mpctl::test::TempDir dir;
    OutputLayout out(dir.path(), 8, 0us);  // every creation counts as slow
    CHECK_FALSE(out.prepares_ahead());     // nothing created yet
    out.expect(2);
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(exists(out.paths(2).stdout_path));  // not ahead yet: expect() did nothing

    // One slow creation is not enough (it may have been an interrupt's work charged to the thread).
    for (int64_t id = 11; id < 10 + OutputLayout::k_slow_streak; ++id) {
        REQUIRE(out.open(id));
        CHECK_FALSE(out.prepares_ahead());
    }
    REQUIRE(out.open(1));
    CHECK(out.prepares_ahead());

    out.expect(2);
    out.expect(3);
    REQUIRE(eventually_exists(out.paths(2).stdout_path));
    REQUIRE(eventually_exists(out.paths(2).stderr_path));
    REQUIRE(eventually_exists(out.paths(3).stdout_path));

    // The start takes the prepared descriptors: what is written through them is in the task's files.
    auto fds = out.open(2);
    REQUIRE(fds);
    REQUIRE(::write(fds->stdout_fd.get(), "two", 3) == 3);
    CHECK(read_all(out.paths(2).stdout_path) == "two");

    // A queued task that will not start after all: its prepared files are dropped, and a later start
    // (a retry, say) still gets empty files.
    out.forget(3);
    auto again = out.open(3);
    REQUIRE(again);
    CHECK(read_all(out.paths(3).stdout_path).empty());
}

TEST_CASE(
    "a retry's start puts the attempt before it aside and starts empty, and remove deletes every attempt's",
    "[unit][output]") {
    mpctl::test::TempDir dir;
    OutputLayout out(dir.path());
    for (int attempt = 1; attempt <= 3; ++attempt) {
        auto fds = out.open(5, 1, attempt);
        REQUIRE(fds);
        CHECK(read_all(out.paths(5).stdout_path).empty());
        std::string said = "attempt " + std::to_string(attempt);
        REQUIRE(::write(fds->stdout_fd.get(), said.data(), said.size()) == static_cast<ssize_t>(said.size()));
        REQUIRE(::write(fds->stderr_fds[0].get(), "e", 1) == 1);
    }
    CHECK(read_all(out.paths(5, 1).stdout_path) == "attempt 1");
    CHECK(read_all(out.paths(5, 2).stdout_path) == "attempt 2");
    CHECK(read_all(out.paths(5, 2).stderr_path) == "e");
    CHECK(read_all(out.paths(5).stdout_path) == "attempt 3");
    CHECK(::access(out.paths(5, 3).stdout_path.c_str(), F_OK) != 0);  // the latest keeps the live names

    // A pipeline's stage files go aside too.
    for (int attempt = 1; attempt <= 2; ++attempt) {
        auto fds = out.open(6, 2, attempt);
        REQUIRE(fds);
        REQUIRE(::write(fds->stderr_fds[1].get(), "s", 1) == 1);
    }
    CHECK(read_all(out.stage_stderr_path(6, 1, 1)) == "s");
    CHECK(read_all(out.stage_stderr_path(6, 1)) == "s");

    out.remove(5, 1, 3);
    out.remove(6, 2, 2);
    out.wait_removed();
    for (const auto& path :
         {out.paths(5).stdout_path, out.paths(5, 1).stdout_path, out.paths(5, 2).stderr_path,
          out.stage_stderr_path(6, 1, 1), out.stage_stderr_path(6, 0)}) {
        INFO(path);
        CHECK(::access(path.c_str(), F_OK) != 0);
    }
    CHECK(OutputLayout::highest_task_id(dir.path()) == 0);
}

TEST_CASE("a removed task's files, a pipeline's stage files too, are deleted off the caller's thread",
          "[unit][output]") {
    mpctl::test::TempDir dir;
    for (size_t lookahead : {size_t{8}, size_t{0}}) {  // with the background thread, and without one
        OutputLayout out(dir.path(), lookahead);
        REQUIRE(out.open(7));
        REQUIRE(out.open(8, 3));
        REQUIRE(out.open(9));
        out.remove(7);
        out.remove(8, 3);
        out.wait_removed();
        for (const auto& path : {out.paths(7).stdout_path, out.paths(7).stderr_path, out.paths(8).stdout_path,
                                 out.stage_stderr_path(8, 0), out.stage_stderr_path(8, 2)}) {
            INFO(path);
            CHECK(::access(path.c_str(), F_OK) != 0);
        }
        CHECK(::access(out.paths(9).stdout_path.c_str(), F_OK) == 0);
        out.remove(9);
        out.remove(9);  // twice, or files already gone: nothing to say
        out.wait_removed();
        CHECK(::access(out.paths(9).stdout_path.c_str(), F_OK) != 0);
    }
}
