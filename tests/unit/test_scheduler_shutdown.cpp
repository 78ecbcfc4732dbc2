// The scheduler, driven by the fakes of scheduler_harness.hpp: shutdown: no new starts, terminating running
// tasks, cancelling pending ones.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE("after stop_starting no task starts, even when a slot frees up", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t running = h.submit(cmd("running"));
    int64_t queued = h.submit(cmd("queued"));
    h.sched.stop_starting();
    CHECK(h.sched.starting_stopped());
    h.exit(running, 0);
    CHECK(h.state(queued) == TaskState::pending);
    int64_t late = h.submit(cmd("late"));
    CHECK(h.state(late) == TaskState::pending);
    h.sched.set_pool_workers("default", 5);
    CHECK(h.spawner.processes.size() == 1);
}

TEST_CASE("after stop_starting a failing task with retries stays pending for the next start",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"retries", 2}, {"retry_delay", 1}}));
    h.sched.stop_starting();
    h.exit(id, 1);
    CHECK(h.state(id) == TaskState::pending);
    CHECK(h.listener.changes.back().state == TaskState::pending);
    h.timers.advance(100000);
    CHECK(h.spawns_of(id) == 1);
}

TEST_CASE("terminate_running sends SIGTERM to every running task and they end cancelled",
          "[unit][scheduler]") {
    Harness h(options(2));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b"));
    int64_t queued = h.submit(cmd("queued"));
    h.sched.stop_starting();
    h.sched.terminate_running(3.0);
    int pa = h.pid(a);
    int pb = h.pid(b);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pa, SIGTERM}, {pb, SIGTERM}});
    h.kill(a, SIGTERM);
    h.timers.advance(2999);
    CHECK(h.spawner.signals.size() == 2);
    h.timers.advance(1);
    CHECK(h.spawner.signals_to(pb) == std::vector<std::pair<int, int>>{{pb, SIGTERM}, {pb, SIGKILL}});
    h.kill(b, SIGKILL);
    CHECK(h.state(a) == TaskState::cancelled);
    CHECK(h.state(b) == TaskState::cancelled);
    CHECK(h.state(queued) == TaskState::pending);  // stays queued for the next start
    CHECK(h.spawns_of(queued) == 0);
}

TEST_CASE("terminate_running with kill_after 0 sends SIGKILL at once", "[unit][scheduler]") {
    Harness h;
    int64_t a = h.submit(cmd("a", {{"kill_after", 30}}));
    int pa = h.pid(a);
    h.sched.stop_starting();
    h.sched.terminate_running(0.0);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pa, SIGKILL}});
}

TEST_CASE("terminate_running without a kill_after uses each task's own", "[unit][scheduler]") {
    Harness h(options(2));
    int64_t a = h.submit(cmd("a", {{"kill_after", 1}}));
    int64_t b = h.submit(cmd("b", {{"kill_after", 4}}));
    int pa = h.pid(a);
    int pb = h.pid(b);
    h.sched.stop_starting();
    h.sched.terminate_running(std::nullopt);
    h.timers.advance(1000);
    CHECK(h.spawner.signals_to(pa).size() == 2);
    CHECK(h.spawner.signals_to(pb).size() == 1);
    h.timers.advance(3000);
    CHECK(h.spawner.signals_to(pb).size() == 2);
}

TEST_CASE("a task with retries terminated at shutdown ends cancelled, not pending", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"retries", 5}}));
    h.sched.stop_starting();
    h.sched.terminate_running(1.0);
    h.kill(id, SIGTERM);
    CHECK(h.state(id) == TaskState::cancelled);
}

TEST_CASE("terminate_running during a timeout's grace period ends the task cancelled", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("slow", {{"timeout", 1}, {"kill_after", 30}, {"retries", 1}}));
    h.timers.advance(1000);  // timed out, in its grace period
    h.sched.stop_starting();
    h.sched.terminate_running(1.0);
    h.kill(id, SIGTERM);
    CHECK(h.state(id) == TaskState::cancelled);
}

TEST_CASE("cancel_pending cancels queued and retrying tasks but leaves running ones", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t running = h.submit(cmd("running"));
    int64_t queued = h.submit(cmd("queued"));
    int64_t waiting = h.submit(cmd("waiting", {{"after", {running}}}));
    Harness r;  // a task in its retry delay
    int64_t retrying = r.submit(cmd("flaky", {{"retries", 1}, {"retry_delay", 5}}));
    r.exit(retrying, 1);
    REQUIRE(r.state(retrying) == TaskState::pending);

    h.sched.stop_starting();
    h.sched.cancel_pending();
    CHECK(h.state(running) == TaskState::running);
    CHECK(h.state(queued) == TaskState::cancelled);
    CHECK(h.state(waiting) == TaskState::cancelled);
    CHECK(h.listener.states_of(queued) == std::vector<TaskState>{TaskState::cancelled});
    h.exit(running, 0);
    CHECK(h.state(running) == TaskState::succeeded);
    CHECK(h.spawns_of(queued) == 0);

    r.sched.stop_starting();
    r.sched.cancel_pending();
    CHECK(r.state(retrying) == TaskState::cancelled);
    r.timers.advance(10000);
    CHECK(r.spawns_of(retrying) == 1);
}

TEST_CASE("cancel_pending cancels a pending task that waits on another pending task", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t running = h.submit(cmd("running"));
    int64_t first = h.submit(cmd("first"));
    int64_t second = h.submit(cmd("second", {{"after", {first}}}));
    h.sched.stop_starting();
    h.sched.cancel_pending();
    CHECK(h.state(running) == TaskState::running);
    CHECK(h.state(first) == TaskState::cancelled);
    CHECK(h.state(second) == TaskState::cancelled);
}

TEST_CASE("stop begins once: asked again it only adds what is new (cancel the queue, terminate)",
          "[unit][scheduler]") {
    Harness h(options(1));
    h.sched.set_pool_workers("map-1", 1, true);
    int64_t running = h.submit(cmd("running", {{"kill_after", 30}}));
    int64_t queued = h.submit(cmd("queued"));
    int64_t transient = h.submit(cmd("t", {{"pool", "map-1"}}));
    int64_t transient_queued = h.submit(cmd("tq", {{"pool", "map-1"}}));
    CHECK(h.sched.stop(false, false, std::nullopt));  // `daemon stop`: tasks run on, no new one starts
    CHECK(h.sched.starting_stopped());
    CHECK(h.state(transient_queued) == TaskState::cancelled);  // its pool dies with the daemon
    CHECK(h.state(queued) == TaskState::pending);
    CHECK(h.spawner.signals.empty());
    // Then `daemon stop --now --cancel-pending`: not a new stop, but it does what it asks.
    CHECK_FALSE(h.sched.stop(true, true, 0.0));
    CHECK(h.state(queued) == TaskState::cancelled);
    CHECK(h.spawner.signals_to(h.pid(running)) ==
          std::vector<std::pair<int, int>>{{h.pid(running), SIGKILL}});
    CHECK(h.spawner.signals_to(h.pid(transient)) ==
          std::vector<std::pair<int, int>>{{h.pid(transient), SIGKILL}});
}
