// Running tasks survive a crash of the serving daemon (issue 20): under `mpctld --supervise`, kill -9 of the
// daemon (not of the supervisor) leaves its tasks to the supervisor, which restarts the daemon; the new one
// re-adopts them, and each ends with its exact outcome: an exit code, a signal, a timeout at its original
// deadline, the status the supervisor journaled for one that ended while no daemon ran, and one still
// running after the restart.

#include <algorithm>
#include <chrono>
#include <signal.h>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;

TEST_CASE("tasks survive kill -9 of the serving daemon under --supervise, each with its exact outcome",
          "[e2e][readoption]") {
    DaemonFixture d(supervised(8));
    TempDir t;
    auto waits_then = [&](const std::string& go, const std::string& then) {
        return std::vector<std::string>{"--", "sh", "-c", sh_wait_for(t / go) + "; " + then};
    };
    int64_t exits_3 = d.submit(waits_then("GO_A", "exit 3"));
    int64_t signalled = d.submit(waits_then("GO_B", "kill -USR1 $$"));
    int64_t times_out = d.submit({"--timeout", "4", "--", "sleep", "100"});
    int64_t ends_while_down = d.submit(waits_then("GO_D", "exit 4"));
    int64_t runs_on = d.submit(waits_then("GO_E", "exit 0"));
    std::map<int64_t, json> before;
    for (int64_t id : {exits_3, signalled, times_out, ends_while_down, runs_on}) {
        before[id] = d.wait_for_state(id, "running");
    }
    d.sync_journal("default", 8);

    pid_t first = serving_pid(d);
    REQUIRE(first != d.pid());  // the daemon, not the supervisor
    REQUIRE(::kill(first, SIGKILL) == 0);
    touch(t / "GO_D");  // it ends now, most likely before the supervisor has started the daemon again
    json daemon = wait_for_new_daemon(d, first);
    CHECK(daemon["supervisor"]["restarts"] == 1);
    // The ones still running were taken back (the one that ended while no daemon ran may be listed too: its
    // outcome came from the exit journal through the same adoption).
    auto readopted = daemon["readopted"].get<std::vector<int64_t>>();
    INFO(daemon.dump());
    for (int64_t id : {exits_3, signalled, runs_on}) {
        CHECK(std::find(readopted.begin(), readopted.end(), id) != readopted.end());
    }
    for (int64_t id : readopted) {
        CHECK(before.contains(id));
    }

    // Still running, as before: same pid, same attempt, same start.
    for (int64_t id : {exits_3, signalled, runs_on}) {
        json s = d.status(id);
        INFO(s.dump());
        CHECK(s["state"] == "running");
        CHECK(s["pid"] == before[id]["pid"]);
        CHECK(s["attempts"] == 1);
        CHECK(s["started_at"] == before[id]["started_at"]);
    }

    touch(t / "GO_A");
    touch(t / "GO_B");
    json a = d.wait_for_state(exits_3, "failed");
    CHECK(a["reason"] == "exit");
    CHECK(a["exit_code"] == 3);
    CHECK(d.mpctl({"wait", str(exits_3)}).exit_code == 3);

    json b = d.wait_for_state(signalled, "failed");
    CHECK(b["reason"] == "signal");
    CHECK(b["signal"] == SIGUSR1);

    json down = d.wait_for_state(ends_while_down, "failed");
    INFO(down.dump());
    CHECK(down["reason"] == "exit");
    CHECK(down["exit_code"] == 4);

    // The timeout fires at its original deadline, 4 s after the start, not 4 s after the restart.
    json timeout = d.wait_for_state(times_out, "failed");
    INFO(timeout.dump());
    CHECK(timeout["reason"] == "timeout");
    CHECK(timeout["signal"] == SIGTERM);
    int64_t ran_ms = ms_between(timeout["started_at"], timeout["finished_at"]);
    CHECK(ran_ms >= 3900);
    CHECK(ran_ms < 6000);

    CHECK(d.status(runs_on)["state"] == "running");
    touch(t / "GO_E");
    json e = d.wait_for_state(runs_on, "succeeded");
    CHECK(e["exit_code"] == 0);
    CHECK(e["pid"].is_null());

    // No re-adopted task is left: the exit journal has been emptied.
    CHECK(eventually([&] { return slurp(d.state_dir() + "/task-exits").empty(); }));
}

TEST_CASE("a task journaled with a start time its pid no longer has is never adopted", "[e2e][readoption]") {
    DaemonFixture d(DaemonOptions{2, {}, {}, {}});  // no supervisor: the journal is changed while none runs
    TempDir t;
    GroupReaper reaper;
    int64_t id = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO")});
    json s = d.wait_for_state(id, "running");
    reaper.add(s["pid"].get<pid_t>());
    d.sync_journal("default", 2);
    d.kill9();
    // The process is still there, but the journal now says its task's process started a minute later: the
    // pid is another process's, as after a reuse.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((d.state_dir() + "/mpctld.db").c_str(), &db) == SQLITE_OK);
    std::string sql = "UPDATE tasks SET pid_start = pid_start + 6000 WHERE id = " + str(id);
    CHECK(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    CHECK(sqlite3_changes(db) == 1);
    sqlite3_close(db);
    d.start();
    json after = d.status(id);
    INFO(after.dump());
    CHECK(after["state"] == "failed");
    CHECK(after["reason"] == "lost");
    CHECK(after["error"].get<std::string>().find("another process") != std::string::npos);
    touch(t / "GO");
}

TEST_CASE("pipelines survive kill -9 of the serving daemon under --supervise, every stage's status weighed",
          "[e2e][readoption]") {
    DaemonFixture d(supervised(4));
    TempDir t;
    // Its first stage ends before the crash (exit 7: the journal has it), the second runs on after it.
    int64_t early = d.submit({"--pipe", "--", "sh", "-c", "exit 7", "|", "sh", "-c",
                              "cat; " + sh_wait_for(t / "GO_A") + "; exit 0"});
    // Both stages end while no daemon runs; the second is not its process group's leader.
    int64_t down =
        d.submit({"--pipe", "--", "sh", "-c", sh_wait_for(t / "GO_D"), "|", "sh", "-c", "cat; exit 4"});
    // Runs on, and its output keeps flowing stage to stage into the task's file.
    int64_t flows = d.submit(
        {"--pipe", "--", "sh", "-c", sh_wait_for(t / "GO_C") + "; echo through", "|", "tr", "a-z", "A-Z"});
    for (int64_t id : {early, down, flows}) {
        d.wait_for_state(id, "running");
    }
    REQUIRE(eventually([&] { return d.status(early)["stages"][0]["state"] == "failed"; }));
    d.sync_journal("default", 4);

    pid_t first = serving_pid(d);
    REQUIRE(::kill(first, SIGKILL) == 0);
    touch(t / "GO_D");
    json daemon = wait_for_new_daemon(d, first);
    auto readopted = daemon["readopted"].get<std::vector<int64_t>>();
    INFO(daemon.dump());
    for (int64_t id : {early, flows}) {
        CHECK(std::find(readopted.begin(), readopted.end(), id) != readopted.end());
    }
    CHECK(d.status(early)["state"] == "running");
    CHECK(d.status(flows)["state"] == "running");

    json gone = d.wait_for_state(down, "failed");
    INFO(gone.dump());
    CHECK(gone["reason"] == "exit");
    CHECK(gone["exit_code"] == 4);
    CHECK(gone["stages"][0]["state"] == "succeeded");

    touch(t / "GO_A");
    touch(t / "GO_C");
    json a = d.wait_for_state(early, "failed");
    INFO(a.dump());
    CHECK(a["reason"] == "exit");
    CHECK(a["exit_code"] == 7);  // the journaled stage's, as pipefail weighs it
    CHECK(a["stages"][0]["exit_code"] == 7);
    CHECK(a["stages"][1]["state"] == "succeeded");
    CHECK(d.mpctl({"wait", str(early)}).exit_code == 7);

    json c = d.wait_for_state(flows, "succeeded");
    INFO(c.dump());
    CHECK(d.mpctl({"logs", str(flows)}).out == "THROUGH\n");
}

TEST_CASE("a --cgroup task survives kill -9 of the serving daemon: the next daemon takes its cgroup over",
          "[e2e][readoption][cgroup]") {
    DaemonFixture d(supervised(4));
    TempDir t;
    json info = d.mpctl_json({"daemon", "status", "--json"});
    if (!info["cgroups"]["available"].get<bool>()) {
        WARN("no writable cgroup v2 here: "
             << info["cgroups"]["reason"]);  // refused at submit then (test_process_control)
        return;
    }
    auto sleeping = [](const std::string& marker) {
        return lines_of(run_process({"pgrep", "-f", "--", "sleep " + marker}).out).size();
    };
    // It leaves a process outside its process group but inside its cgroup ("$0": the shell's own command line
    // does not match the sleep's).
    const std::string escaped = "1020.5";
    int64_t id = d.submit({"--cgroup", "--", "sh", "-c",
                           "setsid sleep \"$0\" & " + sh_wait_for(t / "GO") + "; exit 5", escaped});
    d.wait_for_state(id, "running");
    REQUIRE(eventually([&] { return sleeping(escaped) == 1; }));
    d.sync_journal("default", 4);

    pid_t first = serving_pid(d);
    REQUIRE(::kill(first, SIGKILL) == 0);
    json daemon = wait_for_new_daemon(d, first);
    auto readopted = daemon["readopted"].get<std::vector<int64_t>>();
    INFO(daemon.dump());
    CHECK(std::find(readopted.begin(), readopted.end(), id) != readopted.end());
    // Another --cgroup task: its start sweeps the dead daemon's cgroups, and spares the one taken over.
    CHECK(d.mpctl({"run", "--cgroup", "--", "true"}).exit_code == 0);
    CHECK(d.status(id)["state"] == "running");
    CHECK(sleeping(escaped) == 1);

    touch(t / "GO");
    json s = d.wait_for_state(id, "failed");
    INFO(s.dump());
    CHECK(s["reason"] == "exit");
    CHECK(s["exit_code"] == 5);
    // Its end still kills what it left in its cgroup.
    CHECK(eventually([&] { return sleeping(escaped) == 0; }));
}
