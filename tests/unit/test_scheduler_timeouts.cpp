// The scheduler, driven by the fakes of scheduler_harness.hpp: timeouts: SIGTERM to the group, SIGKILL after
// kill_after, reason timeout.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE(
    "a task past its timeout gets SIGTERM, then SIGKILL after kill_after, and fails with reason timeout",
    "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("slow", {{"timeout", 10}, {"kill_after", 2}}));
    int pid = h.pid(id);
    h.timers.advance(9999);
    CHECK(h.spawner.signals.empty());
    h.timers.advance(1);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGTERM}});
    CHECK(h.state(id) == TaskState::running);
    h.timers.advance(1999);
    CHECK(h.spawner.signals.size() == 1);
    h.timers.advance(1);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGTERM}, {pid, SIGKILL}});
    h.kill(id, SIGKILL);
    Task& t = h.task(id);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::timeout);
    CHECK(t.signal == SIGKILL);
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 124);
    CHECK(h.timers.pending() == 0);
}

TEST_CASE("a task that exits on SIGTERM gets no SIGKILL once its group is gone", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("slow", {{"timeout", 1}, {"kill_after", 5}}));
    int pid = h.pid(id);
    h.timers.advance(1000);
    REQUIRE(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGTERM}});
    h.kill(id, SIGTERM);
    h.timers.advance(10000);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGTERM}});
    CHECK(h.state(id) == TaskState::failed);
    CHECK(h.task(id).reason == FailReason::timeout);
    CHECK(h.timers.pending() == 0);
}

TEST_CASE("the group still gets SIGKILL after kill_after when it outlives its leader", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("sh", {{"timeout", 1}, {"kill_after", 5}}));
    int pid = h.pid(id);
    h.spawner.alive_groups.insert(pid);  // a background child keeps the group alive
    h.timers.advance(1000);
    h.kill(id, SIGTERM);
    CHECK(h.state(id) == TaskState::failed);
    h.timers.advance(4999);
    CHECK(h.spawner.signals_to(pid).size() == 1);
    h.timers.advance(1);
    CHECK(h.spawner.signals_to(pid) == std::vector<std::pair<int, int>>{{pid, SIGTERM}, {pid, SIGKILL}});
}

TEST_CASE("kill_after 0 sends SIGKILL at the deadline without a SIGTERM", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("slow", {{"timeout", 3}, {"kill_after", 0}}));
    int pid = h.pid(id);
    h.timers.advance(3000);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGKILL}});
    h.kill(id, SIGKILL);
    CHECK(h.task(id).reason == FailReason::timeout);
}

TEST_CASE("a timed out task that exits 0 after SIGTERM still fails with reason timeout",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("graceful", {{"timeout", 1}}));
    h.timers.advance(1000);
    h.exit(id, 0);
    CHECK(h.state(id) == TaskState::failed);
    CHECK(h.task(id).reason == FailReason::timeout);
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 124);
}

TEST_CASE("a task that finishes before its timeout is never signalled", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("quick", {{"timeout", 5}}));
    h.timers.advance(4999);
    h.exit(id, 0);
    CHECK(h.timers.pending() == 0);
    h.timers.advance(100000);
    CHECK(h.spawner.signals.empty());
    CHECK(h.state(id) == TaskState::succeeded);
}

TEST_CASE("a task without a timeout starts no timer", "[unit][scheduler]") {
    Harness h;
    h.submit(cmd("forever"));
    CHECK(h.timers.pending() == 0);
    h.timers.advance(365LL * 86400 * 1000);
    CHECK(h.spawner.signals.empty());
}

TEST_CASE("a timed out task with retries gets a fresh timeout for each attempt", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("slow", {{"timeout", 2}, {"kill_after", 1}, {"retries", 1}}));
    int first = h.pid(id);
    h.timers.advance(2000);
    h.kill(id, SIGTERM);
    REQUIRE(h.state(id) == TaskState::running);
    int second = h.pid(id);
    CHECK(second != first);
    h.timers.advance(1999);
    CHECK(h.spawner.signals_to(second).empty());
    h.timers.advance(1);
    CHECK(h.spawner.signals_to(second) == std::vector<std::pair<int, int>>{{second, SIGTERM}});
    h.kill(id, SIGTERM);
    CHECK(h.state(id) == TaskState::failed);
    CHECK(h.task(id).reason == FailReason::timeout);
    CHECK(h.task(id).attempts == 2);
}
