// The scheduler, driven by the fakes of scheduler_harness.hpp: an attached task whose client went away
// (Scheduler::hang_up), as a shell's job when its terminal hangs up.

#include <csignal>

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE("a pending task whose client went away is cancelled and never starts",
          "[unit][scheduler][hangup]") {
    Harness h(options(1));
    int64_t blocker = h.submit(cmd("blocker"));
    int64_t queued = h.submit(cmd("queued"));
    h.sched.hang_up(queued);
    Task& t = h.task(queued);
    CHECK(t.state == TaskState::cancelled);
    CHECK_THAT(t.error.value_or(""), Catch::Contains("client went away before it started"));
    h.exit(blocker, 0);
    CHECK(h.spawns_of(queued) == 0);
    CHECK(h.running().empty());
}

TEST_CASE("a running task whose client went away gets SIGHUP once, with no SIGKILL after, and is not retried",
          "[unit][scheduler][hangup]") {
    Harness h;
    int64_t id = h.submit(cmd("busy", {{"retries", 3}, {"kill_after", 1}}));
    int pid = h.pid(id);
    h.sched.hang_up(id);
    h.sched.hang_up(id);  // a second hang-up adds nothing
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGHUP}});
    h.timers.advance(60000);
    CHECK(h.spawner.signals.size() == 1);
    CHECK(h.state(id) == TaskState::running);
    h.kill(id, SIGHUP);
    Task& t = h.task(id);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::signal);
    CHECK(t.signal == SIGHUP);
    CHECK(t.attempts == 1);
    CHECK_THAT(t.error.value_or(""), Catch::Contains("its client went away"));
}

TEST_CASE("a task that ignores the hang-up runs on and ends as it ends", "[unit][scheduler][hangup]") {
    Harness h;
    int64_t id = h.submit(cmd("nohup"));
    h.sched.hang_up(id);
    h.exit(id, 0);
    CHECK(h.state(id) == TaskState::succeeded);
}

TEST_CASE("a forced cancel after a hang-up stops the task as a cancel does", "[unit][scheduler][hangup]") {
    Harness h;
    int64_t id = h.submit(cmd("stubborn", {{"kill_after", 2}}));
    int pid = h.pid(id);
    h.sched.hang_up(id);
    REQUIRE(h.sched.cancel(id, true) == CancelResult::terminating);
    h.timers.advance(2000);
    CHECK(h.spawner.signals ==
          std::vector<std::pair<int, int>>{{pid, SIGHUP}, {pid, SIGTERM}, {pid, SIGKILL}});
    h.kill(id, SIGKILL);
    CHECK(h.state(id) == TaskState::cancelled);
}

TEST_CASE("a task hung up while its processes start gets SIGHUP once they exist",
          "[unit][scheduler][hangup]") {
    Harness h;
    h.spawner.defer_starts = true;
    int64_t id = h.submit(cmd("starting"));
    h.sched.hang_up(id);
    CHECK(h.spawner.signals.empty());
    REQUIRE(h.spawner.processes.size() == 1);
    int pgid = h.spawner.processes.front().pid;
    h.spawner.complete_start(pgid);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pgid, SIGHUP}});
}

TEST_CASE("a daemon stop cancels pending attached tasks and leaves other pending tasks for the next start",
          "[unit][scheduler][hangup]") {
    Harness h(options(1));
    int64_t running = h.submit(cmd("running"));
    int64_t attached = h.submit(cmd("attached"));
    int64_t detached = h.submit(cmd("detached"));
    h.task(attached).attached = true;
    CHECK(h.sched.stop(false, false, std::nullopt));
    CHECK(h.state(attached) == TaskState::cancelled);
    CHECK(h.state(detached) == TaskState::pending);
    CHECK(h.state(running) == TaskState::running);
}
