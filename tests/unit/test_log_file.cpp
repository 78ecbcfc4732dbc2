// LogFileSink: the daemonized mpctld's log, capped and rotated, with the descriptor it writes to (2 in
// mpctld, a spare one here) always on the current file. And the journal's priority prefixes.

#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <spdlog/logger.h>

#include <mpctl/daemon/service/log_file.hpp>
#include <mpctl/daemon/service/logging.hpp>

#include "temp_dir.hpp"

using mpctl::daemon::LogFileSink;
using mpctl::test::TempDir;

namespace {

std::string log_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

bool log_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// A logger that writes lines of MESSAGE and '\n' only, through a LogFileSink on FD.
struct LogUnderTest {
    LogUnderTest(const std::string& path, uint64_t max_size, int keep)
        : fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)),
          logger("test", std::make_shared<LogFileSink>(path, fd, max_size, keep)) {
        logger.set_pattern("%v");
        logger.set_level(spdlog::level::trace);
    }
    ~LogUnderTest() { ::close(fd); }
    LogUnderTest(const LogUnderTest&) = delete;
    LogUnderTest& operator=(const LogUnderTest&) = delete;

    // True when FD is the file now at PATH (and not one renamed away).
    [[nodiscard]] bool writes_to(const std::string& path) const {
        struct stat by_fd {};
        struct stat by_path {};
        return ::fstat(fd, &by_fd) == 0 && ::stat(path.c_str(), &by_path) == 0 &&
               by_fd.st_ino == by_path.st_ino && by_fd.st_dev == by_path.st_dev;
    }

    int fd;
    spdlog::logger logger;
};

// "line 07 ...": 30 bytes with its '\n'.
std::string numbered_line(int i) {
    std::string text = "line " + std::string(i < 10 ? "0" : "") + std::to_string(i) + " ";
    return text + std::string(29 - text.size(), '.');
}

}  // namespace

TEST_CASE("the log file is rotated before a line would take it past the cap", "[unit][log_file]") {
    TempDir t;
    std::string path = t / "mpctld.log";
    LogUnderTest log(path, 100, 2);
    for (int i = 1; i <= 10; ++i) {
        log.logger.info(numbered_line(i));
    }
    // 3 lines (90 bytes) a file: lines 1-3, 4-6, 7-9, 10; the oldest file is gone.
    CHECK(log_text(path) == numbered_line(10) + "\n");
    CHECK(log_text(path + ".1") ==
          numbered_line(7) + "\n" + numbered_line(8) + "\n" + numbered_line(9) + "\n");
    CHECK(log_text(path + ".2") ==
          numbered_line(4) + "\n" + numbered_line(5) + "\n" + numbered_line(6) + "\n");
    CHECK_FALSE(log_exists(path + ".3"));
    CHECK(log.writes_to(path));
    // What is written to the descriptor directly (a crash report) lands in the current file too.
    REQUIRE(::write(log.fd, "abort\n", 6) == 6);
    CHECK(log_text(path) == numbered_line(10) + "\nabort\n");
}

TEST_CASE("what a log file held before the start counts towards its cap", "[unit][log_file]") {
    TempDir t;
    std::string path = t.write("mpctld.log", std::string(80, 'o') + "\n");
    LogUnderTest log(path, 100, 3);
    log.logger.info(numbered_line(1));
    CHECK(log_text(path + ".1") == std::string(80, 'o') + "\n");
    CHECK(log_text(path) == numbered_line(1) + "\n");
    CHECK(log.writes_to(path));
}

TEST_CASE("log_keep 0 keeps no rotated log, and log_max_size 0 never rotates", "[unit][log_file]") {
    TempDir t;
    {
        std::string path = t / "none.log";
        LogUnderTest log(path, 100, 0);
        for (int i = 1; i <= 7; ++i) {
            log.logger.info(numbered_line(i));
        }
        CHECK(log_text(path) == numbered_line(7) + "\n");
        CHECK_FALSE(log_exists(path + ".1"));
        CHECK(log.writes_to(path));
    }
    {
        std::string path = t / "all.log";
        LogUnderTest log(path, 0, 3);
        for (int i = 1; i <= 7; ++i) {
            log.logger.info(numbered_line(i));
        }
        CHECK(log_text(path).size() == 7 * 30);
        CHECK_FALSE(log_exists(path + ".1"));
    }
}

TEST_CASE("a log line longer than the cap gets a file of its own, whole", "[unit][log_file]") {
    TempDir t;
    std::string path = t / "mpctld.log";
    LogUnderTest log(path, 100, 3);
    log.logger.info(numbered_line(1));
    log.logger.info(std::string(150, 'x'));
    log.logger.info(numbered_line(2));
    CHECK(log_text(path + ".2") == numbered_line(1) + "\n");
    CHECK(log_text(path + ".1") == std::string(150, 'x') + "\n");
    CHECK(log_text(path) == numbered_line(2) + "\n");
}

TEST_CASE("rotating log files shifts each one up and drops the oldest", "[unit][log_file]") {
    TempDir t;
    std::string path = t.write("l", "current");
    (void)t.write("l.1", "one");
    (void)t.write("l.2", "two");
    CHECK(mpctl::daemon::rotate_log_files(path, 2));
    CHECK_FALSE(log_exists(path));
    CHECK(log_text(path + ".1") == "current");
    CHECK(log_text(path + ".2") == "one");
    CHECK_FALSE(log_exists(path + ".3"));
    // Nothing to move is no failure.
    CHECK(mpctl::daemon::rotate_log_files(t / "missing", 3));
}

TEST_CASE("journal log lines carry sd-daemon priority prefixes and no timestamp", "[unit][log_file]") {
    auto formatter = mpctl::daemon::journal_formatter();
    auto line = [&](spdlog::level::level_enum level) {
        spdlog::details::log_msg msg("mpctld", level, "hello");
        spdlog::memory_buf_t out;
        formatter->format(msg, out);
        return std::string(out.data(), out.size());
    };
    CHECK(line(spdlog::level::critical) == "<3>hello\n");
    CHECK(line(spdlog::level::err) == "<3>hello\n");
    CHECK(line(spdlog::level::warn) == "<4>hello\n");
    CHECK(line(spdlog::level::info) == "<6>hello\n");
    CHECK(line(spdlog::level::debug) == "<7>hello\n");
    CHECK(line(spdlog::level::trace) == "<7>hello\n");
}
