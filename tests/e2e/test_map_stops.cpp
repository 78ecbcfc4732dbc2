// mpctl map: streaming input, and how a map stops: Ctrl-C, SIGKILL, a stopping or crashing daemon, a closed
// stdout. Waits are on events with generous deadlines, never on bare sleeps.

#include <algorithm>
#include <map>
#include <set>
#include <signal.h>

#include <catch2/catch.hpp>

#include "map_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using namespace mpctl::test::e2e::map;
using Catch::Matchers::Contains;

TEST_CASE(
    "map streams its input: results print before stdin ends, and only a window of it is read and "
    "submitted",
    "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    {
        // The second line is written only once the first one's result has been printed.
        std::string script =
            "{ echo first; while [ ! -e \"$2\" ]; do sleep 0.01; done; echo second; } | "
            "\"$1\" map -- echo";
        auto bg = spawn_to_files({"sh", "-c", script, "sh", mpctl_bin(), t / "GO"}, d.client_options(),
                                 t / "out1", t / "err1");
        REQUIRE(eventually([&] { return slurp(t / "out1") == "first\n"; }, 60s));
        touch(t / "GO");
        auto r = bg->wait(60s);
        REQUIRE(r);
        INFO(slurp(t / "err1"));
        CHECK(r->exit_code == 0);
        CHECK(slurp(t / "out1") == "first\nsecond\n");
    }
    {
        // A million lines behind a task that blocks: the map reads and submits a window of them, and
        // the writer stays blocked on the full pipe instead of being read to the end.
        REQUIRE(run_process({"mkfifo", t / "in"}).exit_code == 0);
        std::string script =
            "seq 1000003 > \"$2\" & exec \"$1\" map -j1 -- sh -c "
            "'if [ \"$1\" = 1 ]; then while [ ! -e \"$0\" ]; do sleep 0.01; done; fi' " +
            shell_quote_for_test(t / "GO2") + " < \"$2\"";
        auto bg = spawn_to_files({"sh", "-c", script, "sh", mpctl_bin(), t / "in"}, d.client_options(),
                                 t / "out2", t / "err2");
        auto tasks_of_this_map = [&] {
            size_t n = 0;
            for (const auto& task : d.mpctl_ndjson({"list", "--all"})) {
                n += task["argv"][0] == "sh" ? 1 : 0;
            }
            return n;
        };
        REQUIRE(eventually([&] { return d.mpctl_ndjson({"list", "--state", "running"}).size() == 1; }, 60s));
        // The window is max(4 x jobs, 64) tasks: wait until it is full, then it must stay that size.
        REQUIRE(eventually([&] { return tasks_of_this_map() >= 64; }, 60s));
        CHECK(tasks_of_this_map() <= 64);
        CHECK(processes_matching("^seq 1000003$"));
        CHECK(tasks_of_this_map() <= 64);
        bg->signal(SIGINT);
        auto r = bg->wait(60s);
        REQUIRE(r);
        INFO(slurp(t / "err2"));
        CHECK(r->exit_code == 130);
        CHECK(eventually([&] { return unfinished_tasks(d) == 0; }, 60s));
        CHECK(eventually([] { return !processes_matching("^seq 1000003$"); }, 60s));
    }
}

TEST_CASE("Ctrl-C on map cancels its pending tasks and stops its running ones", "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    auto bg = start_map_and_wait(d, t, sleep_map_args("7919."), 2, 8);  // hours long
    REQUIRE(processes_matching("^sleep 7919\\."));
    bg->signal(SIGINT);
    auto r = bg->wait(60s);
    REQUIRE(r);
    INFO(slurp(t / "err"));
    CHECK(r->exit_code == 130);
    CHECK(unfinished_tasks(d) == 0);
    auto all = d.mpctl_ndjson({"list", "--all"});
    CHECK(all.size() == 10);
    for (const auto& o : all) {
        CHECK(o["state"] == "cancelled");
    }
    CHECK(eventually([] { return !processes_matching("^sleep 7919\\."); }, 60s));
}

TEST_CASE("an interrupted map's bar counts what ran and says how many succeeded, failed and were cancelled",
          "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    std::string script = "case $0 in ok*) exit 0;; bad*) exit 3;; *) exec sleep 7907.$0;; esac";
    auto bg = start_map_and_wait(
        d, t, {"map", "-j2", "--progress", "--", "sh", "-c", script, ":::", "ok", "bad", "1", "2", "3", "4"},
        2, 2);
    bg->signal(SIGINT);
    auto r = bg->wait(60s);
    REQUIRE(r);
    std::string err = slurp(t / "err");
    INFO(err);
    CHECK(r->exit_code == 130);
    // The bar's last state counts the two that ran, not the four cancelled ones.
    CHECK_THAT(err, Contains("2/6 ["));
    CHECK_THAT(err, Contains("\n1 succeeded, 1 failed, 4 cancelled\n"));
    CHECK(eventually([] { return !processes_matching("^sleep 7907\\."); }, 60s));
}

TEST_CASE("a map killed with SIGKILL leaves nothing queued: its running tasks finish, the rest are cancelled",
          "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    auto bg = start_map_and_wait(d, t, sleep_map_args("2.7919"), 2, 8);  // under 3 s each
    bg->signal(SIGKILL);  // no handler runs: only the daemon can see the map is gone (its connection closed)
    REQUIRE(bg->wait(60s));
    REQUIRE(eventually([&] { return unfinished_tasks(d) == 0; }, 60s));
    auto all = d.mpctl_ndjson({"list", "--all"});
    REQUIRE(all.size() == 10);
    size_t succeeded = 0;
    size_t cancelled = 0;
    for (const auto& o : all) {
        if (o["state"] == "succeeded") {
            ++succeeded;
        } else if (o["state"] == "cancelled") {
            ++cancelled;
            CHECK_THAT(o["error"].get<std::string>(), Contains("connection that owned pool"));
        }
    }
    // The two that ran finish (a third only if one of them ended before the kill); none is left queued, and
    // without the cancel all ten would have run.
    CHECK(succeeded >= 2);
    CHECK(succeeded <= 4);
    CHECK(succeeded + cancelled == 10);
    // The pool went with the last of its tasks.
    CHECK(eventually([&] { return pool_names(d) == std::vector<std::string>{"default"}; }, 60s));
}

TEST_CASE("a daemon that stops takes a running map's queue with it: nothing of it runs after a restart",
          "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    auto bg = start_map_and_wait(
        d, t, {"map", "-j1", "--", "sh", "-c", sh_wait_for(t / "GO"), ":::", "a", "b", "c", "d", "e"}, 1, 4);
    d.stop();  // SIGTERM: stop --now. An ordinary queue would wait for the next start; a map's cannot.
    REQUIRE(bg->wait(60s));
    d.start();
    CHECK(unfinished_tasks(d) == 0);
    auto all = d.mpctl_ndjson({"list", "--all"});
    REQUIRE(all.size() == 5);
    size_t orphans = 0;
    for (const auto& o : all) {
        CHECK(o["state"] == "cancelled");
        if (o["error"].get<std::string>().find("the daemon stopped") != std::string::npos) {
            ++orphans;
        }
    }
    CHECK(orphans == 4);
}

TEST_CASE("after a kill -9 of the daemon under a map, the restarted daemon cancels the map's queue",
          "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    GroupReaper reaper;  // the task running at the kill is orphaned: it must not outlive the test
    // The map's client waits 1 s for its daemon to come back (MPCTL_RECONNECT_TIMEOUT), then gives up: this
    // one comes back only after that.
    ProcessOptions gives_up_soon;
    gives_up_soon.env_set = {{"MPCTL_RECONNECT_TIMEOUT", "1"}};
    auto bg = start_map_and_wait(
        d, t, {"map", "-j1", "--", "sh", "-c", sh_wait_for(t / "GO"), ":::", "a", "b", "c", "d", "e"}, 1, 4,
        gives_up_soon);
    json running = d.mpctl_ndjson({"list", "--state", "running"}).at(0);
    reaper.add(running["pid"].get<pid_t>());
    d.sync_journal("default", 2);  // the task's start journaled (a few ms after it), as the kill finds it
    d.kill9();
    REQUIRE(bg->wait(60s));
    d.start();
    size_t cancelled = 0;
    for (const auto& o : d.mpctl_ndjson({"list", "--all"})) {
        if (o["state"] == "cancelled") {
            ++cancelled;
            CHECK_THAT(o["error"].get<std::string>(), Contains("the daemon restarted"));
        }
    }
    CHECK(cancelled == 4);
    // The one running at the kill was re-adopted and runs on (its process outlived the daemon); its pool
    // goes with it.
    int64_t adopted = running["id"].get<int64_t>();
    CHECK(d.status(adopted)["state"] == "running");
    touch(t / "GO");
    // Its process is the test's now (no supervising parent here): reaped, its exit status is the kernel's
    // to tell the daemon (PIDFD_GET_INFO).
    reap_orphan(running["pid"].get<pid_t>());
    if (kernel_reports_exits()) {
        d.wait_for_state(adopted, "succeeded");
    } else {  // an older kernel: nobody recorded how it ended
        CHECK(d.wait_for_state(adopted, "failed")["reason"] == "lost");
    }
    CHECK(unfinished_tasks(d) == 0);
    CHECK(eventually([&] { return pool_names(d) == std::vector<std::string>{"default"}; }, 60s));
    d.stop();
    d.start();  // and the pool is not remembered any more
    CHECK(pool_names(d) == std::vector<std::string>{"default"});
}

TEST_CASE("under --supervise a map outlives a kill -9 of its daemon: its queued tasks are submitted again",
          "[e2e][map]") {
    DaemonFixture d(supervised(2));
    TempDir t;
    auto bg = start_map_and_wait(
        d, t,
        {"map", "-j1", "--", "sh", "-c", sh_wait_for(t / "GO") + "; echo $0", ":::", "a", "b", "c", "d", "e"},
        1, 4);
    d.sync_journal("default", 2);
    pid_t first = serving_pid(d);
    REQUIRE(::kill(first, SIGKILL) == 0);
    wait_for_new_daemon(d, first);
    // The daemon that came back cancelled the four queued tasks (their pool belonged to a connection of the
    // dead one) and re-adopted the running one; the map, connected again, submits the four once more.
    REQUIRE(eventually([&] { return d.mpctl_ndjson({"list", "--state", "pending"}).size() == 4; }, 60s));
    touch(t / "GO");
    auto r = bg->wait(120s);
    REQUIRE(r);
    INFO(slurp(t / "err"));
    CHECK(r->exit_code == 0);
    CHECK(slurp(t / "out") == "a\nb\nc\nd\ne\n");  // every item once, in input order
    CHECK_THAT(slurp(t / "err"), Contains("submitting them again"));
    std::map<std::string, size_t> states;
    for (const auto& o : d.mpctl_ndjson({"list", "--all"})) {
        ++states[o["state"].get<std::string>()];
    }
    CHECK(states == std::map<std::string, size_t>{{"cancelled", 4}, {"succeeded", 5}});
}

TEST_CASE("map stops its tasks when nobody reads its output any more", "[e2e][map]") {
    DaemonFixture d;
    // `head -1` exits after the first result: the map sees its stdout closed and stops the sleeps at once.
    std::string map =
        shell_quote_for_test(mpctl_bin()) +
        " map -j2 -- sh -c 'if [ $0 = a ]; then echo a; else exec sleep 7907; fi' ::: a b c d e";
    auto start = std::chrono::steady_clock::now();
    auto r = run_process({"/bin/sh", "-c", map + " | head -1"}, d.client_options());
    INFO(r.err);
    CHECK(r.out == "a\n");
    CHECK_FALSE(r.timed_out);
    CHECK(std::chrono::steady_clock::now() - start < 100s);
    CHECK(unfinished_tasks(d) == 0);
    CHECK(eventually([] { return !processes_matching("^sleep 7907$"); }, 60s));
}
