// The exit codes of README.md's two tables, each provoked for real: commands that mirror a task (run, result,
// wait) and every other command.

#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

// A Unix socket file that nobody listens on (connect gets ECONNREFUSED).
void make_dead_socket(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
}

// A task submitted with SUBMIT_ARGS fails to start with CODE: its status says so (reason spawn), and wait
// and result exit with CODE.
void check_spawn_failure(const DaemonFixture& d, const std::vector<std::string>& submit_args, int code) {
    int64_t id = d.submit(submit_args);
    json s = d.wait_for_state(id, "failed");
    CHECK(s["reason"] == "spawn");
    CHECK(s["exit_code"] == code);
    CHECK(d.mpctl({"wait", str(id)}).exit_code == code);
    CHECK(d.mpctl({"result", str(id)}).exit_code == code);
}

}  // namespace

TEST_CASE("run exits 0 when the task succeeds", "[e2e][exit_codes]") {
    DaemonFixture d;
    CHECK(d.mpctl({"run", "--", "true"}).exit_code == 0);
}

TEST_CASE("run, result and wait pass the task's own exit code 1..123 through", "[e2e][exit_codes]") {
    DaemonFixture d;
    for (int code : {1, 2, 57, 100, 123}) {
        INFO("exit " << code);
        CHECK(d.mpctl({"run", "--", "sh", "-c", "exit " + std::to_string(code)}).exit_code == code);
        int64_t id = d.submit({"--", "sh", "-c", "exit " + std::to_string(code)});
        CHECK(d.mpctl({"wait", str(id)}).exit_code == code);
        CHECK(d.mpctl({"result", str(id)}).exit_code == code);
    }
}

TEST_CASE("a task's --timeout gives 124 from run, wait and result", "[e2e][exit_codes]") {
    DaemonFixture d;
    CHECK(d.mpctl({"run", "--timeout", "0.2", "--", "sleep", "60"}).exit_code == 124);
    int64_t id = d.submit({"--timeout", "0.2", "--", "sleep", "60"});
    CHECK(d.mpctl({"wait", str(id)}).exit_code == 124);
    CHECK(d.mpctl({"result", str(id)}).exit_code == 124);
}

TEST_CASE("wait --timeout and result --timeout give 124 when the task is not done", "[e2e][exit_codes]") {
    DaemonFixture d;
    TempDir t;
    int64_t id = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO")});
    CHECK(d.mpctl({"wait", "--timeout", "0.2", str(id)}).exit_code == 124);
    CHECK(d.mpctl({"result", "--timeout", "0.2", str(id)}).exit_code == 124);
    CHECK(d.mpctl({"as-completed", "--timeout", "0.2", str(id)}).exit_code == 124);
    touch(t / "GO");
    CHECK(d.mpctl({"wait", str(id)}).exit_code == 0);
}

TEST_CASE("a cancelled task gives 125 from wait and result", "[e2e][exit_codes]") {
    DaemonFixture d;
    TempDir t;
    REQUIRE(d.mpctl({"pool", "set", "solo", "--workers", "1"}).exit_code == 0);
    int64_t blocker = d.submit({"--pool", "solo", "--", "sh", "-c", sh_wait_for(t / "GO")});
    d.wait_for_state(blocker, "running");
    int64_t queued = d.submit({"--pool", "solo", "--", "true"});
    CHECK(d.mpctl({"cancel", str(queued)}).exit_code == 0);
    CHECK(d.mpctl({"wait", str(queued)}).exit_code == 125);
    CHECK(d.mpctl({"result", str(queued)}).exit_code == 125);

    int64_t running = d.submit({"--", "sleep", "60"});
    d.wait_for_state(running, "running");
    CHECK(d.mpctl({"cancel", "--force", str(running)}).exit_code == 0);
    CHECK(d.mpctl({"wait", str(running)}).exit_code == 125);
    touch(t / "GO");
}

TEST_CASE("a task whose dependency failed gives 125", "[e2e][exit_codes]") {
    DaemonFixture d;
    int64_t failing = d.submit({"--", "false"});
    int64_t dependant = d.submit({"--after", str(failing), "--", "true"});
    CHECK(d.mpctl({"wait", str(dependant)}).exit_code == 125);
    CHECK(d.status(dependant)["reason"] == "dependency");
    auto r = d.mpctl({"run", "--after", str(failing), "--", "true"});
    CHECK(r.exit_code == 125);
    CHECK_THAT(r.err, Contains("dependency"));
}

TEST_CASE("a command that cannot be executed gives 126", "[e2e][exit_codes]") {
    DaemonFixture d;
    TempDir t;
    t.write("noexec.sh", "#!/bin/sh\necho should not run\n");
    REQUIRE(::chmod((t / "noexec.sh").c_str(), 0644) == 0);
    ProcessOptions in_t;
    in_t.cwd = t.path();

    SECTION("a file without the x bit, by path") {
        auto r = d.mpctl({"run", "--", "./noexec.sh"}, in_t);
        INFO(r.err);
        CHECK(r.exit_code == 126);
        CHECK(r.out.empty());
    }
    SECTION("a file without the x bit, found in PATH") {
        auto r = d.mpctl({"run", "--env", "PATH=" + t.path(), "--", "noexec.sh"}, in_t);
        INFO(r.err);
        CHECK(r.exit_code == 126);
    }
    SECTION("a directory") {
        CHECK(d.mpctl({"run", "--", t.path()}).exit_code == 126);
    }
    SECTION("a working directory that does not exist") {
        auto r = d.mpctl({"run", "--cwd", t / "missing", "--", "true"});
        INFO(r.err);
        CHECK(r.exit_code == 126);
        check_spawn_failure(d, {"--cwd", t / "missing", "--", "true"}, 126);
    }
}

TEST_CASE("a command that is not found gives 127", "[e2e][exit_codes]") {
    DaemonFixture d;
    auto r = d.mpctl({"run", "--", "mpctl-e2e-no-such-command"});
    CHECK(r.exit_code == 127);
    CHECK_THAT(r.err, Contains("not found"));
    CHECK(d.mpctl({"run", "--", "/nonexistent/dir/cmd"}).exit_code == 127);
    check_spawn_failure(d, {"--", "mpctl-e2e-no-such-command"}, 127);
}

TEST_CASE("an empty command name is a command not found: 127, as bash gives, not a refused request",
          "[e2e][exit_codes]") {
    DaemonFixture d;
    auto r = d.mpctl({"run", "--", ""});
    CHECK(r.exit_code == 127);
    CHECK_THAT(r.err, Contains("command not found: ''"));
    CHECK(d.mpctl({"run", "--", "", "x"}).exit_code == 127);
    // In a pipeline too: nothing starts, as with any stage that is not found.
    CHECK(d.mpctl({"run", "--pipe", "--", "true", "|", ""}).exit_code == 127);
    check_spawn_failure(d, {"--", ""}, 127);
    // The reference: bash runs nothing and exits 127.
    CHECK(run_process({"bash", "-c", "'' x"}).exit_code == 127);
}

TEST_CASE("a task killed by signal N gives 128+N", "[e2e][exit_codes]") {
    DaemonFixture d;
    CHECK(d.mpctl({"run", "--", "sh", "-c", "kill -KILL $$"}).exit_code == 137);
    CHECK(d.mpctl({"run", "--", "sh", "-c", "kill -TERM $$"}).exit_code == 143);
    int64_t id = d.submit({"--", "sh", "-c", "kill -KILL $$"});
    json s = d.wait_for_state(id, "failed");
    CHECK(s["reason"] == "signal");
    CHECK(s["signal"] == 9);
    CHECK(d.mpctl({"wait", str(id)}).exit_code == 137);
    CHECK(d.mpctl({"result", str(id)}).exit_code == 137);
}

TEST_CASE("usage errors exit 2", "[e2e][exit_codes]") {
    DaemonFixture d;
    int64_t id = d.submit({"--", "true"});
    std::vector<std::vector<std::string>> cases = {
        {},                                                // no command at all
        {"no-such-subcommand"},                            // unknown command
        {"status", "--bogus", str(id)},                    // unknown flag
        {"list", "--bogus"},                               // unknown flag
        {"submit", "--bogus", "--", "true"},               // unknown flag before the command
        {"status", "abc"},                                 // bad id
        {"status", "0"},                                   // bad id
        {"status", "-5"},                                  // bad id
        {"wait", "1x"},                                    // bad id
        {"cancel", "one"},                                 // bad id
        {"wait", "--timeout", "5x", str(id)},              // bad duration
        {"result", "--timeout", "soon", str(id)},          // bad duration
        {"submit", "--timeout", "forever", "--", "true"},  // bad duration
        {"submit", "--retry-delay", "-1", "--", "true"},   // bad duration
        {"submit"},                                        // missing command
        {"submit", "--"},                                  // missing command
        {"run", "--name", "x"},                            // missing command
        {"kill", "--signal", "NOSUCHSIG", str(id)},        // bad signal
        {"list", "--state", "sleeping"},                   // bad state
        {"submit", "--label", "novalue", "--", "true"},    // bad label
        {"submit", "--after", "abc", "--", "true"},        // bad id in --after
    };
    for (const auto& args : cases) {
        auto r = d.mpctl(args);
        std::string joined;
        for (const auto& a : args) {
            joined += a + " ";
        }
        INFO("mpctl " << joined << "\nstdout: " << r.out << "\nstderr: " << r.err);
        CHECK(r.exit_code == 2);
        CHECK_THAT(r.err, Contains("mpctl"));
    }
    // None of them queued anything.
    CHECK(d.mpctl_ndjson({"list"}).size() == 1);
}

namespace {

// A command line, the exit code it must end with, and what it must say on stderr.
struct Said {
    std::vector<std::string> args;
    int code;
    std::string said;
};

void check_said(DaemonFixture& d, const std::vector<Said>& cases) {
    for (const auto& c : cases) {
        auto r = d.mpctl(c.args);
        INFO(c.said << "\nstderr: " << r.err);
        CHECK(r.exit_code == c.code);
        CHECK_THAT(r.err, Contains(c.said));
    }
}

}  // namespace

TEST_CASE("an unknown command is named, with the nearest one suggested, as git does", "[e2e][exit_codes]") {
    DaemonFixture d;
    check_said(d,
               {
                   {{"lsit"}, 2, "mpctl: unknown command 'lsit'; did you mean 'list'?"},
                   {{"log", "3"}, 2, "mpctl: unknown command 'log'; did you mean 'logs'?"},
                   {{"--json", "stauts", "3"}, 2, "mpctl: unknown command 'stauts'; did you mean 'status'?"},
                   {{"pool", "lsit"}, 2, "mpctl: pool: unknown command 'lsit'; did you mean 'list'?"},
                   {{"daemon", "stat"}, 2, "mpctl: daemon: unknown command 'stat'; did you mean 'status'?"},
                   {{"xyzzy"}, 2, "mpctl: unknown command 'xyzzy' (see mpctl --help)"},
                   {{"pool"}, 2, "mpctl: pool: which command? (set, delete, list; see mpctl pool --help)"},
               });
}

TEST_CASE("usage errors speak of the options and words the user gave, not of the parser's or the protocol's",
          "[e2e][exit_codes]") {
    DaemonFixture d;
    check_said(
        d, {
               {{"status"}, 2, "mpctl: missing task id (mpctl status ID)"},
               {{"wait"}, 2, "mpctl: missing task id (mpctl wait ID)"},
               {{"pool", "set", "p", "--workers", "abc"}, 2, "mpctl: --workers: not a number: 'abc'"},
               {{"map", "-j", "0", "--", "echo", ":::", "a"},
                2,
                "mpctl: --jobs: must be from 1 to 100000, got 0"},
               {{"list", "--limit", "0"}, 2, "mpctl: --limit: must be 1 or more, got 0"},
               {{"submit", "--after", "99999", "--", "true"}, 4, "mpctl: --after: no task 99999"},
               {{"run", "--after", "99999", "--", "true"}, 4, "mpctl: --after: no task 99999"},
               {{"map", "--after", "99999", "--", "echo", ":::", "a"}, 4, "mpctl: --after: no task 99999"},
           });
    auto help = d.mpctl({"map", "--help"});
    CHECK_THAT(help.out, Contains("Usage: mpctl map [OPTIONS] [--] CMD [ARG...] [::: ITEM..."));
    CHECK_THAT(help.out, !Contains("INT:INT"));
    CHECK_THAT(d.mpctl({"submit", "--help"}).out,
               Contains("Usage: mpctl submit [OPTIONS] [--] CMD [ARG...]"));
}

TEST_CASE("no daemon reachable exits 3 when autostart is off", "[e2e][exit_codes]") {
    TempDir t;
    DaemonGuard guard(t / "state");  // in case a daemon were started anyway
    std::string socket = t / "dead.sock";

    SECTION("with --no-autostart and no socket file") {
        auto r = run_process({mpctl_bin(), "--no-autostart", "status", "1"},
                             autostart_options(socket, t / "state"));
        INFO(r.err);
        CHECK(r.exit_code == 3);
        CHECK_THAT(r.err, Contains("mpctl: "));
    }
    SECTION("with --no-autostart and a stale socket file nobody listens on") {
        make_dead_socket(socket);
        for (std::vector<std::string> args : {std::vector<std::string>{"status", "1"},
                                              {"submit", "--", "true"},
                                              {"run", "--", "true"},
                                              {"wait", "1"},
                                              {"list"},
                                              {"daemon", "status"}}) {
            args.insert(args.begin(), "--no-autostart");
            args.insert(args.begin(), mpctl_bin());
            auto r = run_process(args, autostart_options(socket, t / "state"));
            INFO(args.at(2) << ": " << r.err);
            CHECK(r.exit_code == 3);
        }
    }
    SECTION("with MPCTL_NO_AUTOSTART=1") {
        ProcessOptions o = autostart_options(socket, t / "state");
        o.env_set["MPCTL_NO_AUTOSTART"] = "1";
        auto r = run_process({mpctl_bin(), "run", "--", "true"}, o);
        CHECK(r.exit_code == 3);
    }
    CHECK(guard.pid() == -1);
}

TEST_CASE("an unknown id exits 4", "[e2e][exit_codes]") {
    DaemonFixture d;
    int64_t known = d.submit({"--", "true"});
    d.wait_for_state(known, "succeeded");
    for (std::vector<std::string> args : {std::vector<std::string>{"status", "999"},
                                          {"wait", "999"},
                                          {"cancel", "999"},
                                          {"kill", "999"},
                                          {"logs", "999"},
                                          {"result", "999"},
                                          {"as-completed", "999"},
                                          {"status", str(known), "999"},
                                          {"wait", str(known), "999"}}) {
        auto r = d.mpctl(args);
        INFO(args.at(0) << ": " << r.err);
        CHECK(r.exit_code == 4);
        CHECK_THAT(r.err, Contains("999"));
    }
    CHECK(d.mpctl({"submit", "--after", "999", "--", "true"}).exit_code == 4);
}

TEST_CASE("kill of a finished task and cancel of a running one without --force exit 1", "[e2e][exit_codes]") {
    DaemonFixture d;
    TempDir t;
    int64_t finished = d.submit({"--", "true"});
    d.wait_for_state(finished, "succeeded");
    auto k = d.mpctl({"kill", str(finished)});
    INFO(k.err);
    CHECK(k.exit_code == 1);
    CHECK_THAT(k.err, Contains("mpctl: "));

    int64_t running = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO")});
    d.wait_for_state(running, "running");
    auto c = d.mpctl({"cancel", str(running)});
    INFO(c.err);
    CHECK(c.exit_code == 1);
    CHECK(d.status(running)["state"] == "running");
    touch(t / "GO");
    CHECK(d.mpctl({"wait", str(running)}).exit_code == 0);
}

TEST_CASE("a request the daemon refuses exits 6", "[e2e][exit_codes]") {
    DaemonFixture d;
    // Pool names are checked by the daemon (1-64 of [A-Za-z0-9_.-]).
    auto set = d.mpctl({"pool", "set", "bad/name", "--workers", "1"});
    INFO(set.err);
    CHECK(set.exit_code == 6);
    CHECK_THAT(set.err, Contains("mpctl: "));
    auto submit = d.mpctl({"submit", "--pool", "no spaces", "--", "true"});
    INFO(submit.err);
    CHECK(submit.exit_code == 6);
}

TEST_CASE("wait on several tasks exits with the first unsuccessful one's code in argument order",
          "[e2e][exit_codes]") {
    DaemonFixture d;
    int64_t ok = d.submit({"--", "true"});
    int64_t three = d.submit({"--", "sh", "-c", "exit 3"});
    int64_t five = d.submit({"--", "sh", "-c", "exit 5"});
    int64_t killed = d.submit({"--", "sh", "-c", "kill -KILL $$"});
    d.wait_for_state(ok, "succeeded");
    d.wait_for_state(three, "failed");
    d.wait_for_state(five, "failed");
    d.wait_for_state(killed, "failed");
    CHECK(d.mpctl({"wait", str(ok)}).exit_code == 0);
    CHECK(d.mpctl({"wait", str(ok), str(five), str(three)}).exit_code == 5);
    CHECK(d.mpctl({"wait", str(three), str(five)}).exit_code == 3);
    CHECK(d.mpctl({"wait", str(ok), str(killed), str(three)}).exit_code == 137);
    CHECK(d.mpctl({"as-completed", str(ok), str(five), str(three)}).exit_code == 5);
}

TEST_CASE("wait on several tasks follows argument order, not completion order", "[e2e][exit_codes]") {
    DaemonFixture d;
    TempDir t;
    int64_t late = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO") + "; exit 3"});
    int64_t early = d.submit({"--", "sh", "-c", "exit 5"});
    auto waiter = mpctl_in_background(d, {"wait", str(late), str(early)}, t / "out", t / "err");
    d.wait_for_state(early, "failed");
    touch(t / "GO");
    auto r = waiter->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 3);
}

TEST_CASE("with --json an error is also printed on stdout as an error object with code and message",
          "[e2e][exit_codes]") {
    DaemonFixture d;
    TempDir t;
    struct Case {
        std::vector<std::string> args;
        ProcessOptions options;
        int exit_code;
    };
    ProcessOptions no_daemon;
    no_daemon.env_set["MPCTL_SOCKET"] = t / "nobody.sock";
    std::vector<Case> cases{
        {{"--json", "status", "999"}, {}, 4},                              // the daemon's error
        {{"--json", "pool", "set", "bad/name", "--workers", "1"}, {}, 6},  // refused by the daemon
        {{"--json", "status", "abc"}, {}, 2},                              // a bad id
        {{"--json", "status", "--bogus", "1"}, {}, 2},                     // an unknown flag
        {{"--json", "status", "1"}, no_daemon, 3},                         // no daemon
    };
    for (const auto& c : cases) {
        auto r = d.mpctl(c.args, c.options);
        INFO("mpctl " << c.args.at(1) << " " << c.args.at(2) << "\nstdout: " << r.out
                      << "\nstderr: " << r.err);
        CHECK(r.exit_code == c.exit_code);
        CHECK_THAT(r.err, Contains("mpctl: "));
        json j = json::parse(r.out, nullptr, false);
        CHECK(j.is_object());
        json error = j.is_object() ? j.value("error", json()) : json();
        CHECK(error.is_object());
        CHECK((error.is_object() && error.contains("code")));
        CHECK((error.is_object() && error.value("message", json()).is_string()));
    }
}
