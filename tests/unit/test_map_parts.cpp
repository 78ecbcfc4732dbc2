// The small parts of `mpctl map`: items from ::: words or stdin lines, --halt, the joblog, input-order
// reordering, the progress line, and the exit code of several tasks.

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <mpctl/cli/map/halt.hpp>
#include <mpctl/cli/map/items.hpp>
#include <mpctl/cli/map/joblog.hpp>
#include <mpctl/cli/map/progress.hpp>
#include <mpctl/cli/map/reorder.hpp>
#include <mpctl/cli/task_exit.hpp>
#include <mpctl/common/sys.hpp>

using namespace mpctl::cli::map;

#include "temp_dir.hpp"

TEST_CASE("map: lines are split at newlines, byte for byte, with a last line without newline",
          "[unit][map]") {
    LineSplitter s;
    s.feed("a b\r\n\nc", 7);
    CHECK(s.pop() == std::optional<std::string>("a b\r"));
    CHECK(s.pop() == std::optional<std::string>(""));
    CHECK_FALSE(s.pop());
    s.feed("d\n", 2);
    CHECK(s.pop() == std::optional<std::string>("cd"));
    s.feed("e", 1);
    CHECK_FALSE(s.pop());
    s.finish();
    CHECK(s.pop() == std::optional<std::string>("e"));
    s.finish();
    CHECK_FALSE(s.pop());
}

TEST_CASE("map: items after ::: are all known at once", "[unit][map]") {
    auto src = ItemSource::from_words({"x", "y"});
    CHECK(src.at_eof());
    CHECK(src.total() == std::optional<size_t>(2));
    CHECK(src.fd() == -1);
    CHECK(src.next() == std::optional<std::string>("x"));
    CHECK_FALSE(src.exhausted());
    CHECK(src.next() == std::optional<std::string>("y"));
    CHECK(src.exhausted());
    CHECK_FALSE(src.next());
}

TEST_CASE("map: several ::: groups give their cross product, the last group varying fastest", "[unit][map]") {
    auto src = ItemSource::from_word_groups({{"a", "b"}, {"1", "2", "3"}});
    CHECK(src.total() == std::optional<size_t>(6));
    CHECK_FALSE(src.reads_lines());
    std::vector<std::string> got;
    while (auto item = src.next()) {
        got.push_back(*item);
    }
    const std::string sep(1, k_field_separator);
    CHECK(got == std::vector<std::string>{"a" + sep + "1", "a" + sep + "2", "a" + sep + "3", "b" + sep + "1",
                                          "b" + sep + "2", "b" + sep + "3"});
    CHECK(src.exhausted());
    // An empty group makes no item at all.
    auto none = ItemSource::from_word_groups({{"a"}, {}});
    CHECK(none.total() == std::optional<size_t>(0));
    CHECK_FALSE(none.next());
}

TEST_CASE("map: stdin items are read as they come and counted at the end", "[unit][map]") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    auto src = ItemSource::from_fd(fds[0]);
    CHECK_FALSE(src.total());
    CHECK(src.fd() == fds[0]);
    REQUIRE(::write(fds[1], "one\ntw", 6) == 6);
    src.fill();
    CHECK(src.ready() == 1);
    CHECK(src.next() == std::optional<std::string>("one"));
    CHECK_FALSE(src.next());
    CHECK_FALSE(src.exhausted());
    REQUIRE(::write(fds[1], "o\n", 2) == 2);
    ::close(fds[1]);
    src.fill();
    src.fill();
    CHECK(src.at_eof());
    CHECK(src.total() == std::optional<size_t>(2));
    CHECK(src.fd() == -1);
    CHECK(src.next() == std::optional<std::string>("two"));
    CHECK(src.exhausted());
    ::close(fds[0]);
}

TEST_CASE("map: --halt accepts now|soon,fail=N and never", "[unit][map]") {
    auto now = parse_halt("now,fail=1");
    REQUIRE(now);
    CHECK(now->when == HaltPolicy::When::now);
    CHECK(now->fail == 1);
    CHECK(now->triggered(1));
    auto soon = parse_halt("soon,fail=3");
    REQUIRE(soon);
    CHECK(soon->when == HaltPolicy::When::soon);
    CHECK_FALSE(soon->triggered(2));
    CHECK(soon->triggered(3));
    auto never = parse_halt("never");
    REQUIRE(never);
    CHECK_FALSE(never->triggered(1000));
    for (const char* bad : {"", "now", "now,fail=0", "later,fail=1", "now,fail=", "now,fail=x", "soon,done=1",
                            "now,fail=-1", "now,fail=1x"}) {
        INFO(bad);
        CHECK_FALSE(parse_halt(bad));
    }
}

TEST_CASE("map: the joblog has a header and one tab-separated line per task", "[unit][map]") {
    CHECK(joblog_header() == "Seq\tId\tExitval\tSignal\tStarttime\tJobRuntime\tCommand\n");
    JoblogEntry e;
    e.seq = 3;
    e.id = 42;
    e.exit_code = 2;
    e.started_at_ms = 1700000000123;
    e.duration_ms = 1500;
    e.command = joblog_command(std::vector<std::string>{"echo", "a b", "c"}, std::nullopt);
    CHECK(joblog_line(e) == "3\t42\t2\t0\t1700000000.123\t1.500\techo 'a b' c\n");
}

TEST_CASE("map: the joblog shows signals, tasks that never ran, and escapes tabs and newlines",
          "[unit][map]") {
    JoblogEntry e;
    e.seq = 1;
    e.id = 7;
    e.signal = 9;
    e.command = joblog_command(std::nullopt, std::string("printf 'a\tb\\n'\nexit 1"));
    CHECK(joblog_line(e) == "1\t7\t-1\t9\t0.000\t0.000\tprintf 'a\\tb\\\\n'\\nexit 1\n");
}

TEST_CASE("map: results wait until every earlier one is out", "[unit][map]") {
    Reorder<int> r;
    r.add(2, 20);
    r.add(1, 10);
    CHECK_FALSE(r.pop());
    CHECK(r.waiting() == 2);
    r.add(0, 0);
    CHECK(r.pop() == std::optional<int>(0));
    CHECK(r.pop() == std::optional<int>(10));
    CHECK(r.pop() == std::optional<int>(20));
    CHECK_FALSE(r.pop());
    CHECK(r.next() == 3);
    CHECK(r.waiting() == 0);
}

TEST_CASE("map: the progress line shows done/total, percent, rate and ETA", "[unit][map]") {
    std::string line = progress_line(50, 200, 10.0, 80);
    INFO(line);
    CHECK(line.rfind("50/200 [", 0) == 0);
    CHECK(line.find(" 25% ") != std::string::npos);
    CHECK(line.find("5.0/s") != std::string::npos);
    CHECK(line.find("ETA 0:30") != std::string::npos);
    CHECK(line.size() <= 80);
    CHECK(progress_line(3, std::nullopt, 1.0) == "3/? 3.0/s");
    CHECK(progress_line(0, 10, 0.0).find("ETA ?") != std::string::npos);
    CHECK(progress_line(10, 10, 2.0).find("100%") != std::string::npos);
    // Too narrow for a bar: just the numbers.
    CHECK(progress_line(1, 2, 1.0, 10).find('[') == std::string::npos);
}

TEST_CASE("map: the summary under the bar says how a map that did not simply succeed ended", "[unit][map]") {
    CHECK(outcome_summary(10, 0, 0, 0).empty());
    CHECK(outcome_summary(8, 2, 0, 0) == "8 succeeded, 2 failed");
    CHECK(outcome_summary(1, 1, 4, 0) == "1 succeeded, 1 failed, 4 cancelled");
    CHECK(outcome_summary(0, 0, 3, 7) == "0 succeeded, 3 cancelled, 7 not started");
}

TEST_CASE("map: the exit code of several tasks is the first unsuccessful one in input order", "[unit][map]") {
    mpctl::cli::FirstUnsuccessful f;
    CHECK(f.code() == 0);
    f.add_code(5, 0);
    CHECK(f.code() == 0);
    f.add_code(7, 3);
    CHECK(f.code() == 3);
    f.add_code(9, 4);  // later in input order: does not speak
    CHECK(f.code() == 3);
    f.add_code(2, 125);  // earlier, though it finished later
    CHECK(f.code() == 125);
    mpctl::proto::TaskStatus s;
    s.state = mpctl::proto::TaskState::failed;
    s.reason = mpctl::proto::FailReason::exit;
    s.exit_code = 7;
    f.add(1, s);
    CHECK(f.code() == 7);
}

TEST_CASE("map: the joblog file starts over with its header and gets one whole line per task",
          "[unit][map]") {
    mpctl::test::TempDir dir;
    std::string path = dir / "jobs.tsv";
    {
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, "old contents\n", 13) == 13);
        ::close(fd);
    }
    auto file = JoblogFile::create(path);
    REQUIRE(file);
    JoblogEntry e;
    e.seq = 1;
    e.id = 7;
    e.exit_code = 0;
    e.command = "true";
    REQUIRE(file->write(e));
    e.seq = 2;
    e.id = 9;
    REQUIRE(file->write(e));
    auto text = mpctl::common::read_file(path);
    REQUIRE(text);
    CHECK(*text == joblog_header() +
                       joblog_line({1, 7, 0, std::nullopt, std::nullopt, std::nullopt, "true"}) +
                       joblog_line({2, 9, 0, std::nullopt, std::nullopt, std::nullopt, "true"}));
}

TEST_CASE("map: a joblog that cannot be created says why", "[unit][map]") {
    auto file = JoblogFile::create("/nonexistent-dir/jobs.tsv");
    REQUIRE_FALSE(file);
    CHECK(file.error().err == ENOENT);
}
