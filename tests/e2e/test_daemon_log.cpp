// The daemon's log: a daemonized mpctld's STATE_DIR/mpctld.log capped and rotated (log_max_size,
// log_keep), and lines for systemd's journal (sd-daemon priority prefixes, no timestamps).

#include <algorithm>
#include <dirent.h>
#include <regex>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

// systemd's variables, which a test run under systemd (a CI runner's service) may have inherited: with
// them mpctld would take itself for a service.
const std::vector<std::string> k_systemd_variables{"NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM"};

// The names in DIR that begin with PREFIX.
std::vector<std::string> log_file_names(const std::string& dir, const std::string& prefix) {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return names;
    }
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name.starts_with(prefix)) {
            names.push_back(name);
        }
    }
    ::closedir(d);
    return names;
}

off_t log_file_size(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

const std::regex& log_timestamp_re() {
    static const std::regex re(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})");
    return re;
}

}  // namespace

TEST_CASE("a daemonized mpctld rotates its log past log_max_size and keeps log_keep rotated logs",
          "[e2e][log]") {
    TempDir t;
    std::string state = t / "state";
    std::string socket = t / "d.sock";
    std::string log = state + "/mpctld.log";
    const off_t cap = 2048;
    // log_keep from the file, and --log-keep, which wins.
    std::string config = t.write(
        "mpctld.toml", "log_level = \"debug\"\nlog_max_size = " + std::to_string(cap) + "\nlog_keep = 5\n");
    DaemonGuard guard(state);
    ProcessOptions o;
    o.env_unset = k_systemd_variables;
    // Daemonized, mpctld returns once it serves.
    auto started = run_process({mpctld_bin(), "--socket", socket, "--state-dir", state, "--config", config,
                                "--workers", "1", "--log-keep", "2"},
                               o);
    INFO(started.err);
    REQUIRE(started.exit_code == 0);
    REQUIRE(guard.pid() > 0);

    // Every request is a debug line: ask until two rotations have happened, then as many again, so that a
    // third rotated log would be there if it were kept.
    RpcConnection conn(socket);
    auto request = [&] {
        REQUIRE(conn.call("daemon.status", json::object()).contains("result"));
    };
    REQUIRE(eventually(
        [&] {
            request();
            return exists(log + ".2");
        },
        120s));
    for (int i = 0; i < 100; ++i) {
        request();
    }
    INFO(slurp(log));
    CHECK_FALSE(exists(log + ".3"));
    auto names = log_file_names(state, "mpctld.log");
    CHECK(names.size() == 3);
    for (const auto& name : names) {
        INFO(name);
        CHECK(log_file_size(state + "/" + name) > 0);
        CHECK(log_file_size(state + "/" + name) <= cap);
    }
    // The rotated logs hold the requests, timestamped.
    std::string rotated = slurp(log + ".1");
    CHECK_THAT(rotated, Contains("request daemon.status"));
    CHECK(std::regex_search(rotated, log_timestamp_re()));

    // The serving daemon's descriptor 2, where a crash report would go, is the current log, not a rotated
    // one; its supervisor's (the pid in the lock) holds no log open between its own lines.
    auto fd2_of = [](pid_t pid) {
        char target[4096];
        ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/fd/2").c_str(), target, sizeof target);
        return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
    };
    json status = conn.call("daemon.status", json::object()).at("result");
    REQUIRE(status["supervisor"]["pid"] == guard.pid());
    CHECK(fd2_of(status["pid"].get<pid_t>()) == log);
    CHECK(fd2_of(guard.pid()) == "/dev/null");

    ProcessOptions client = o;
    client.env_set = {{"MPCTL_SOCKET", socket}, {"MPCTL_NO_AUTOSTART", "1"}};
    CHECK(run_process({mpctl_bin(), "daemon", "stop"}, client).exit_code == 0);
    CHECK(eventually([&] { return guard.pid() == -1; }));
    CHECK_THAT(slurp(log), Contains("mpctld stopped"));
}

TEST_CASE("on systemd's journal mpctld's log lines carry priority prefixes and no timestamps", "[e2e][log]") {
    TempDir t;
    std::string socket = t / "d.sock";
    std::string err_path = t / "journal";
    touch(err_path);
    struct stat st {};
    REQUIRE(::stat(err_path.c_str(), &st) == 0);
    ProcessOptions o;
    o.env_unset = k_systemd_variables;
    // systemd says which stream is the journal by its device and inode; here that is the file stderr goes to.
    o.env_set["JOURNAL_STREAM"] = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    o.output_file = err_path;
    BackgroundProcess daemon({mpctld_bin(), "--foreground", "--exit-with-parent", "--socket", socket,
                              "--state-dir", t / "state", "--workers", "1", "--log-level", "debug"},
                             o, false);
    REQUIRE(eventually([&] { return socket_answers(socket) || !daemon.running(); }));
    RpcConnection conn(socket);
    REQUIRE(conn.call("daemon.status", json::object()).contains("result"));
    REQUIRE(
        eventually([&] { return slurp(err_path).find("<7>request daemon.status") != std::string::npos; }));
    daemon.signal(SIGTERM);
    auto r = daemon.wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);

    std::string text = slurp(err_path);
    INFO(text);
    auto lines = lines_of(text);
    static const std::regex serving(R"(^<6>mpctld \S+ serving .*)");
    CHECK(std::any_of(lines.begin(), lines.end(),
                      [](const std::string& line) { return std::regex_match(line, serving); }));
    CHECK_THAT(text, Contains("<6>mpctld stopped"));
    static const std::regex prefixed(R"(^<[3467]>.*)");
    for (const auto& line : lines) {
        INFO(line);
        CHECK(std::regex_match(line, prefixed));
        CHECK_FALSE(std::regex_search(line, log_timestamp_re()));
    }
}

TEST_CASE("a JOURNAL_STREAM that is not mpctld's stderr leaves log lines timestamped", "[e2e][log]") {
    // A child of a service inherits $JOURNAL_STREAM with its stderr pointed elsewhere.
    ProcessOptions o;
    o.env_unset = k_systemd_variables;
    o.env_set["JOURNAL_STREAM"] = "1:1";
    DaemonFixture d(DaemonOptions{1, {}, o, {}});
    CHECK(d.mpctl({"daemon", "status"}).exit_code == 0);
    REQUIRE(d.stop() == 0);
    std::string text = d.log();
    INFO(text);
    CHECK_THAT(text, Contains("mpctld stopped"));
    CHECK(text.find("<6>") == std::string::npos);
    for (const auto& line : lines_of(text)) {
        INFO(line);
        CHECK(std::regex_search(line, log_timestamp_re()));
    }
}
