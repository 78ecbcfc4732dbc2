// The exit journal's records (daemon/exec/exit_journal.hpp): written by the supervisor, read by the daemon.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/exit_journal.hpp>

#include "temp_dir.hpp"

using namespace mpctl;
using namespace mpctl::daemon;

TEST_CASE("an exit record reads back as it was written, and anything else is no record", "[exit_journal]") {
    ExitRecord r{4242, 123456789, 3 << 8};
    std::string line = format_exit_record(r);
    REQUIRE(line.ends_with('\n'));
    CHECK(parse_exit_record(std::string_view(line).substr(0, line.size() - 1)) == r);
    for (const char* bad :
         {"", "4242", "4242 1", "4242 1 2 3", "-1 1 2", "0 1 2", "x 1 2", "4242  1 2", "4242 1 2 "}) {
        INFO(bad);
        CHECK_FALSE(parse_exit_record(bad));
    }
    CHECK(parse_exit_record("7 8 -1") == ExitRecord{7, 8, -1});
}

TEST_CASE("the daemon reads each appended record once, whole lines only, and clear empties the file",
          "[exit_journal]") {
    test::TempDir dir;
    std::string path = exit_journal_path(dir.path());
    ExitJournal journal(path);
    CHECK(journal.read_new().empty());  // no file yet

    auto fd = open_exit_journal_for_append(path);
    REQUIRE(fd);
    REQUIRE(append_exit_record(fd->get(), {10, 100, 0}));
    REQUIRE(append_exit_record(fd->get(), {11, 101, SIGKILL}));
    CHECK(journal.read_new() == std::vector<ExitRecord>{{10, 100, 0}, {11, 101, SIGKILL}});
    CHECK(journal.read_new().empty());

    // Half a line (a write cut short, or one being made) waits for its end.
    REQUIRE(common::write_all(fd->get(), "12 102"));
    CHECK(journal.read_new().empty());
    REQUIRE(common::write_all(fd->get(), " 256\n"));
    CHECK(journal.read_new() == std::vector<ExitRecord>{{12, 102, 256}});

    journal.clear();
    REQUIRE(append_exit_record(fd->get(), {13, 103, 0}));  // O_APPEND: after the truncation, at 0
    CHECK(journal.read_new() == std::vector<ExitRecord>{{13, 103, 0}});
}

TEST_CASE("boottime ticks are /proc/PID/stat's start time of a process started now", "[exit_journal]") {
    uint64_t before = boottime_ticks_now();
    pid_t child = ::fork();
    if (child == 0) {
        ::pause();
        ::_exit(0);
    }
    REQUIRE(child > 0);
    auto started = common::process_start_time(child);
    uint64_t after = boottime_ticks_now();
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    REQUIRE(started);
    CHECK(*started >= before);
    CHECK(*started <= after);
}
