// mpctld --supervise (issue 20): a supervising parent restarts a daemon killed with -9 (with backoff, and
// gives up on a crash loop), forwards SIGTERM and SIGHUP and exits with the daemon, records the exit of a
// task that ends while its daemon is down (STATE_DIR/task-exits) before it reaps it, and keeps daemonize's
// handshake: a daemonized start returns 0 once the daemon serves, 1 with its message when it cannot start.
// The fixture's pid is the supervisor's; `daemon status` names the daemon's own and the supervisor's.

#include <charconv>
#include <signal.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"
#include "journal_damage.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

// The record of PID in the exit journal TEXT ("PID START STATUS" lines), if there is one.
std::optional<std::pair<uint64_t, int>> exit_record(const std::string& text, pid_t pid) {
    for (const auto& line : lines_of(text)) {
        std::istringstream in(line);
        pid_t p = 0;
        uint64_t start = 0;
        int status = -1;
        if (in >> p >> start >> status && p == pid) {
            return std::make_pair(start, status);
        }
    }
    return std::nullopt;
}

const std::vector<std::string> k_no_systemd_variables{"NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM"};

}  // namespace

TEST_CASE("an unsupervised daemon says it has no supervisor", "[e2e][supervisor]") {
    DaemonFixture d;
    json s = daemon_status(d);
    REQUIRE(s.is_object());
    CHECK(s["pid"] == d.pid());
    CHECK(s["supervisor"].is_null());
}

TEST_CASE("a supervised daemon killed with -9 is started again with its tasks", "[e2e][supervisor]") {
    DaemonFixture d(supervised());
    json before = daemon_status(d);
    REQUIRE(before.is_object());
    INFO(before.dump());
    const pid_t first = before["pid"].get<pid_t>();
    CHECK(first != d.pid());
    REQUIRE(before["supervisor"].is_object());
    CHECK(before["supervisor"]["pid"] == d.pid());
    CHECK(before["supervisor"]["restarts"] == 0);
    // The lock file names the supervisor: the process to signal.
    CHECK(std::atol(slurp(d.state_dir() + "/mpctld.lock").c_str()) == d.pid());

    int64_t id = d.submit({"--", "sh", "-c", "echo done; exit 3"});
    CHECK(d.mpctl({"wait", str(id)}).exit_code == 3);
    // A task's end reaches the journal within a few ms of its answer, not before it (PROTOCOL.md,
    // task.submit): a kill in between would find it running in the journal, its process reaped by the dead
    // daemon, and lost.
    d.sync_journal("default", 2);

    REQUIRE(::kill(first, SIGKILL) == 0);
    json after = wait_for_new_daemon(d, first);
    INFO(after.dump());
    CHECK(d.running());
    CHECK(after["supervisor"]["pid"] == d.pid());
    CHECK(after["supervisor"]["restarts"] == 1);
    CHECK_THAT(d.mpctl({"daemon", "status"}).out,
               Contains("supervisor: pid " + std::to_string(d.pid()) + ", 1 restarts"));
    CHECK_FALSE(process_alive(first));
    json task = d.status(id);
    CHECK(task["state"] == "failed");
    CHECK(task["exit_code"] == 3);
    CHECK(d.mpctl({"logs", str(id)}).out == "done\n");
    CHECK_THAT(d.log(),
               Contains("supervisor: the daemon (pid " + std::to_string(first) + ") was killed by SIGKILL"));
    // New tasks run on the new daemon.
    CHECK(d.mpctl({"run", "--", "true"}).exit_code == 0);
}

TEST_CASE("SIGTERM to the supervisor stops the daemon cleanly and the supervisor exits 0",
          "[e2e][supervisor]") {
    TempDir cfg;
    std::string config = cfg.write("mpctld.toml", "workers = 2\n");
    DaemonOptions o = supervised();
    o.workers = 0;
    o.extra_args.insert(o.extra_args.end(), {"--config", config});
    DaemonFixture d(o);
    const pid_t child = serving_pid(d);

    // SIGHUP is forwarded: the daemon reads its config file again, and is not restarted.
    cfg.write("mpctld.toml", "workers = 3\n");
    REQUIRE(::kill(d.pid(), SIGHUP) == 0);
    CHECK(eventually([&] {
        json s = daemon_status(d);
        return s.is_object() && s["workers"] == 3;
    }));
    CHECK(serving_pid(d) == child);

    int64_t id = d.submit({"--", "sleep", "600"});
    json running = d.wait_for_state(id, "running");
    GroupReaper reaper;
    reaper.add(running["pid"].get<pid_t>());

    CHECK(d.stop() == 0);
    CHECK(eventually([&] { return !process_alive(child); }));
    std::string log = d.log();
    CHECK_THAT(log, Contains("SIGTERM: stopping now"));
    CHECK_THAT(log, Contains("mpctld stopped"));
    CHECK_FALSE(log.find("starting it again") != std::string::npos);
    CHECK_FALSE(exists(d.socket()));
    // The stop was `stop --now`: the running task was cancelled, and that is journaled.
    d.start();
    CHECK(d.status(id)["state"] == "cancelled");
}

TEST_CASE("kill -9 of the supervisor takes the daemon with it", "[e2e][supervisor]") {
    DaemonFixture d(supervised());
    const pid_t child = serving_pid(d);
    d.kill9();
    CHECK(eventually([&] { return !process_alive(child); }));
    // The state dir is free again: a new daemon starts on it.
    d.start();
    CHECK(serving_pid(d) != child);
}

TEST_CASE("a task that exits while its daemon is down has its exact status recorded before it is reaped",
          "[e2e][supervisor]") {
    DaemonFixture d(supervised());
    TempDir t;
    const std::string go = t / "go";
    int64_t id = d.submit({"--", "sh", "-c", sh_wait_for(go) + "; exit 3"});
    // A second task still running when the daemon comes back: the journal is emptied only once no
    // re-adopted task is left, so the first one's record stays there to be read.
    int64_t holds = d.submit({"--", "sh", "-c", sh_wait_for(t / "release")});
    json running = d.wait_for_state(id, "running");
    d.wait_for_state(holds, "running");
    d.sync_journal("default", 2);
    const pid_t task = running["pid"].get<pid_t>();
    GroupReaper reaper;
    reaper.add(task);
    reaper.add(d.status(holds)["pid"].get<pid_t>());
    const auto start = mpctl::common::process_start_time(task);
    REQUIRE(start);

    const pid_t first = serving_pid(d);
    REQUIRE(::kill(first, SIGKILL) == 0);
    // The kernel hands the task to the supervisor (the child subreaper), not to init.
    REQUIRE(eventually([&] { return parent_of(task) == d.pid(); }));
    touch(go);

    const std::string exits = d.state_dir() + "/task-exits";
    std::optional<std::pair<uint64_t, int>> record;
    REQUIRE(eventually([&] { return (record = exit_record(slurp(exits), task)).has_value(); }));
    CHECK(record->first == *start);
    CHECK(record->second == 768);  // exited with code 3, as waitpid(2) encodes it
    // Reaped once recorded: no zombie is left of it.
    CHECK(eventually([&] { return proc_stat_fields(task).empty(); }));
    // And the daemon that came back took its outcome from there.
    json ended = d.wait_for_state(id, "failed");
    CHECK(ended["reason"] == "exit");
    CHECK(ended["exit_code"] == 3);
    touch(t / "release");
    CHECK(d.wait_for_state(holds, "succeeded")["exit_code"] == 0);
    CHECK(eventually([&] { return slurp(exits).empty(); }));  // emptied once no adopted task is left
}

TEST_CASE("a daemon that keeps crashing is restarted with a growing backoff, then given up on",
          "[e2e][supervisor]") {
    DaemonFixture d(supervised());
    pid_t pid = serving_pid(d);
    for (int crash = 1; crash <= 4; ++crash) {
        REQUIRE(::kill(pid, SIGKILL) == 0);
        json after = wait_for_new_daemon(d, pid);
        CHECK(after["supervisor"]["restarts"] == crash);
        pid = after["pid"].get<pid_t>();
    }
    std::string log = d.log();
    CHECK_THAT(log, Contains("starting it again in 0.1 s (crash 1 within 60 s)"));
    CHECK_THAT(log, Contains("starting it again in 0.2 s (crash 2 within 60 s)"));
    CHECK_THAT(log, Contains("starting it again in 0.4 s (crash 3 within 60 s)"));
    CHECK_THAT(log, Contains("starting it again in 0.8 s (crash 4 within 60 s)"));

    // The fifth within a minute: the supervisor gives up, exit 1.
    REQUIRE(::kill(pid, SIGKILL) == 0);
    REQUIRE(eventually([&] { return !d.running(); }));
    CHECK(d.stop() == 1);
    CHECK_THAT(d.log(), Contains("5 crashes within 60 s, giving up"));
}

TEST_CASE(
    "a daemonized mpctld --supervise returns 0 once the daemon serves, 1 with its message when it cannot "
    "start",
    "[e2e][supervisor]") {
    TempDir t;
    const std::string state = t / "state";
    const std::string socket = t / "d.sock";
    DaemonGuard guard(state);
    ProcessOptions o;
    o.env_unset = k_no_systemd_variables;
    const std::vector<std::string> argv{mpctld_bin(),  "--supervise", "--socket",  socket,
                                        "--state-dir", state,         "--workers", "1"};
    auto started = run_process(argv, o);
    INFO(started.err);
    REQUIRE(started.exit_code == 0);
    const pid_t supervisor = guard.pid();
    REQUIRE(supervisor > 0);
    RpcConnection conn(socket);
    json reply = conn.call("daemon.status", json::object());
    INFO(reply.dump());
    CHECK(reply["result"]["supervisor"]["pid"] == supervisor);
    CHECK(reply["result"]["pid"] != supervisor);
    // Between its own lines the supervisor holds no log open (the daemon rotates it)...
    char target[4096];
    ssize_t n = ::readlink(("/proc/" + std::to_string(supervisor) + "/fd/2").c_str(), target, sizeof target);
    REQUIRE(n > 0);
    CHECK(std::string(target, static_cast<size_t>(n)) == "/dev/null");
    // ... and its lines reach the current log.
    const pid_t serving = reply["result"]["pid"].get<pid_t>();
    REQUIRE(::kill(serving, SIGKILL) == 0);
    CHECK(eventually([&] {
        return slurp(state + "/mpctld.log")
                   .find("supervisor: the daemon (pid " + std::to_string(serving) +
                         ") was killed by SIGKILL") != std::string::npos;
    }));

    ProcessOptions client = o;
    client.env_set = {{"MPCTL_SOCKET", socket}, {"MPCTL_NO_AUTOSTART", "1"}};
    CHECK(run_process({mpctl_bin(), "daemon", "stop"}, client).exit_code == 0);
    CHECK(eventually([&] { return !process_alive(supervisor); }));

    // A start that fails: the daemon's message reaches whoever started it, and nothing stays behind.
    overwrite_header(state + "/mpctld.db");
    auto failed = run_process(argv, o);
    INFO(failed.err);
    CHECK(failed.exit_code == 1);
    CHECK_THAT(failed.err, Contains("mpctld --recover"));
    CHECK(eventually([&] { return guard.pid() == -1; }));
    CHECK_FALSE(socket_answers(socket));
}
