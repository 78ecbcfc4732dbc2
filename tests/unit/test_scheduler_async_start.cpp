// The scheduler, driven by the fakes of scheduler_harness.hpp, with spawns that report their outcome later,
// as the daemon's spawn thread does: between its start and its pids a task holds its slot and is running
// without a pid, and whatever clients do to it meanwhile (a signal, a forced cancel, a daemon stop) is done
// once it has processes.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

namespace {

// The process group of the one spawn so far.
int only_group(Harness& h) {
    REQUIRE(h.spawner.processes.size() == 1);
    return h.spawner.processes.front().pid;
}

// Submits SPEC to H, whose spawns from now on report later: the task is starting.
int64_t submit_starting(Harness& h, const json& spec) {
    h.spawner.defer_starts = true;
    return h.submit(spec);
}

// The one spawn so far reports its processes; their group.
int finish_start(Harness& h) {
    int pgid = only_group(h);
    h.spawner.complete_start(pgid);
    return pgid;
}

}  // namespace

TEST_CASE(
    "a task whose processes are starting holds its slot, is running without a pid, and is journaled "
    "once it has one",
    "[unit][scheduler][async_start]") {
    Harness h(options(1));
    h.spawner.defer_starts = true;
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b"));
    REQUIRE(h.spawner.processes.size() == 1);  // b waits: a has the only slot
    CHECK(h.task(a).starting());
    CHECK(h.view.status(h.task(a)).state == TaskState::running);
    CHECK_FALSE(h.view.status(h.task(a)).pid);
    CHECK(h.sched.count(TaskState::running) == 1);
    CHECK(h.listener.states_of(a).empty());  // nothing to journal yet
    h.spawner.complete_start(h.spawner.processes[0].pid);
    CHECK(h.view.status(h.task(a)).state == TaskState::running);
    CHECK(h.view.status(h.task(a)).pid == h.spawner.processes[0].pid);
    CHECK(h.listener.states_of(a) == std::vector<TaskState>{TaskState::running});
    CHECK(h.spawner.processes.size() == 1);
    h.exit(a, 0);
    CHECK(h.state(a) == TaskState::succeeded);
    REQUIRE(h.spawner.processes.size() == 2);
    h.spawner.complete_start(h.spawner.processes[1].pid);
    CHECK(h.state(b) == TaskState::running);
}

TEST_CASE("a spawn that fails later frees the slot for the next task", "[unit][scheduler][async_start]") {
    Harness h(options(1));
    h.spawner.defer_starts = true;
    h.spawner.fail_for["nope"] = spawn_error(127, "command not found: nope");
    int64_t bad = h.submit(cmd("nope"));
    int64_t next = h.submit(cmd("next"));
    CHECK(h.spawner.processes.empty());
    CHECK(h.task(bad).starting());
    h.spawner.complete_failed_start();
    CHECK(h.state(bad) == TaskState::failed);
    CHECK(h.task(bad).exit_code == 127);
    CHECK(h.task(bad).error == "command not found: nope");
    REQUIRE(h.spawner.processes.size() == 1);  // the next one got the slot
    h.spawner.complete_start(h.spawner.processes[0].pid);
    CHECK(h.state(next) == TaskState::running);
}

TEST_CASE(
    "a task cancelled while its processes start is stopped as soon as they exist, as it would have been",
    "[unit][scheduler][async_start]") {
    Harness h(options(1));
    int64_t id = submit_starting(h, cmd("a"));
    CHECK(h.sched.cancel(id, false) == Scheduler::CancelResult::running);  // running: only with force
    CHECK(h.sched.cancel(id, true) == Scheduler::CancelResult::terminating);
    CHECK(h.spawner.signals.empty());
    int pgid = finish_start(h);
    // SIGTERM first, SIGKILL after the task's kill_after (5 s by default), as for a running task.
    CHECK(h.spawner.signals_to(pgid) == std::vector<std::pair<int, int>>{{pgid, SIGTERM}});
    h.timers.advance(5000);
    CHECK(h.spawner.signals_to(pgid) == std::vector<std::pair<int, int>>{{pgid, SIGTERM}, {pgid, SIGKILL}});
    h.spawner.exit(pgid, killed(SIGKILL));
    CHECK(h.state(id) == TaskState::cancelled);
}

TEST_CASE("a signal sent while a task's processes start reaches them once they exist",
          "[unit][scheduler][async_start]") {
    Harness h(options(1));
    int64_t id = submit_starting(h, cmd("a"));
    CHECK(h.sched.signal(id, SIGUSR1));
    CHECK(h.spawner.signals.empty());
    int pgid = finish_start(h);
    CHECK(h.spawner.signals_to(pgid) == std::vector<std::pair<int, int>>{{pgid, SIGUSR1}});
    CHECK(h.state(id) == TaskState::running);
}

TEST_CASE("a daemon stop while a task's processes start ends them once they exist",
          "[unit][scheduler][async_start]") {
    Harness h(options(1));
    int64_t id = submit_starting(h, cmd("a"));
    CHECK(h.sched.stop(false, true, 0.0));  // with the grace the stop asked for: none
    int pgid = finish_start(h);
    CHECK(h.spawner.signals_to(pgid) == std::vector<std::pair<int, int>>{{pgid, SIGKILL}});
    h.spawner.exit(pgid, killed(SIGKILL));
    CHECK(h.state(id) == TaskState::cancelled);
}

TEST_CASE("a timeout counts from when the processes exist, not from when the spawn was asked for",
          "[unit][scheduler][async_start]") {
    Harness h(options(1));
    int64_t id = submit_starting(h, cmd("a", {{"timeout", 1}, {"kill_after", 0}}));
    h.timers.advance(5000);
    CHECK(h.spawner.signals.empty());
    int pgid = finish_start(h);
    CHECK(h.state(id) == TaskState::running);
    h.timers.advance(999);
    CHECK(h.spawner.signals.empty());
    h.timers.advance(1);
    CHECK(h.spawner.signals_to(pgid) == std::vector<std::pair<int, int>>{{pgid, SIGKILL}});
}

TEST_CASE(
    "after_starts runs at once when nothing asked for is starting, else once all of it has started or "
    "failed to",
    "[unit][scheduler][async_start]") {
    Harness h(options(2));
    h.spawner.defer_starts = true;
    h.spawner.fail_for["nope"] = spawn_error(127, "command not found: nope");
    int64_t a = h.submit(cmd("a"));
    int64_t bad = h.submit(cmd("nope"));
    int64_t queued = h.submit(cmd("queued"));
    int now = 0;
    h.sched.after_starts({queued}, [&] { ++now; });
    CHECK(now == 1);  // pending, not starting
    int later = 0;
    h.sched.after_starts({a, bad, a}, [&] {
        ++later;
        CHECK_FALSE(h.task(a).starting());  // its pid is there for the answer
    });
    h.spawner.complete_start(h.spawner.processes.front().pid);
    CHECK(later == 0);  // the failed spawn has not been reported yet
    h.spawner.complete_failed_start();
    CHECK(later == 1);
    CHECK(h.state(bad) == TaskState::failed);
}
