// The scheduler, driven by the fakes of scheduler_harness.hpp: transient pools (a map's): cancelled with
// their owner, at shutdown and after a restart.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE(
    "when the owner of a transient pool is gone its pending tasks are cancelled and it is dropped "
    "after the running ones",
    "[unit][scheduler]") {
    Harness h(options(4));
    h.sched.set_pool_workers("map-1", 1, true);
    int64_t running = h.submit(cmd("a", {{"pool", "map-1"}}));
    int64_t queued = h.submit(cmd("b", {{"pool", "map-1"}}));
    int64_t waiting = h.submit(cmd("c", {{"pool", "map-1"}, {"after", {queued}}}));
    int64_t elsewhere = h.submit(cmd("d"));
    REQUIRE(h.state(running) == TaskState::running);
    REQUIRE(h.state(queued) == TaskState::pending);

    h.sched.release_transient_pool("map-1");
    CHECK(h.state(running) == TaskState::running);  // what runs finishes, as after a killed xargs
    CHECK(h.state(queued) == TaskState::cancelled);
    CHECK_THAT(h.task(queued).error.value_or(""), Catch::Matchers::Contains("owned pool map-1 closed"));
    CHECK(h.state(waiting) != TaskState::pending);
    CHECK(h.task(waiting).finished());
    CHECK(h.state(elsewhere) == TaskState::running);  // other pools are not touched
    auto pools = h.sched.pools();
    CHECK(find_pool(pools, "map-1") != nullptr);

    h.exit(running, 0);
    CHECK(h.state(running) == TaskState::succeeded);
    CHECK(h.spawner.spawn_calls == 2);  // a and d: nothing more started in map-1
    pools = h.sched.pools();
    CHECK(find_pool(pools, "map-1") == nullptr);
    CHECK(h.listener.dropped_pools == std::vector<std::string>{"map-1"});  // its journal row goes too
}

TEST_CASE("a daemon that stops cancels the pending tasks of transient pools, and only theirs",
          "[unit][scheduler]") {
    Harness h(options(1));
    h.sched.set_pool_workers("map-2", 1, true);
    int64_t running = h.submit(cmd("a", {{"pool", "map-2"}}));
    int64_t queued = h.submit(cmd("b", {{"pool", "map-2"}}));
    int64_t busy = h.submit(cmd("c"));
    int64_t kept = h.submit(cmd("d"));
    CHECK(h.sched.stop(false, false, std::nullopt));
    CHECK(h.state(running) == TaskState::running);
    CHECK(h.state(queued) == TaskState::cancelled);
    CHECK_THAT(h.task(queued).error.value_or(""), Catch::Matchers::Contains("the daemon stopped"));
    CHECK(h.state(busy) == TaskState::running);
    CHECK(h.state(kept) == TaskState::pending);  // an ordinary pool's queue waits for the next start
    h.sched.release_transient_pool("map-2");     // the connections close as the daemon goes
    CHECK(h.state(running) == TaskState::running);
}

TEST_CASE("a task committed after its transient pool's owner is gone is cancelled, not run",
          "[unit][scheduler]") {
    Harness h(options(4));
    h.sched.set_pool_workers("map-3", 2, true);
    // A submit whose commit is still in flight when the connection closes.
    Task& late = h.sched.add(mpctl::proto::parse_task_spec(cmd("a", {{"pool", "map-3"}})), 1000);
    int64_t id = late.id;
    h.sched.release_transient_pool("map-3");
    h.sched.make_durable(id);
    h.sched.schedule(id);
    CHECK(h.state(id) == TaskState::cancelled);
    CHECK(h.spawner.spawn_calls == 0);
    auto pools = h.sched.pools();
    CHECK(find_pool(pools, "map-3") == nullptr);
}

TEST_CASE("resume cancels the queue of a transient pool left by a dead daemon and forgets the pool",
          "[unit][scheduler]") {
    Harness h(options(4));
    Task running = h.journaled(1, TaskState::running, cmd("a", {{"pool", "map-7"}}));
    running.pid = 4242;
    h.sched.restore(std::move(running));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("b", {{"pool", "map-7"}})));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("c", {{"pool", "ordinary"}})));
    h.sched.orphan_restored_pool("map-7");
    h.sched.resume();
    CHECK(h.state(1) == TaskState::failed);  // lost, as everywhere
    CHECK(h.state(2) == TaskState::cancelled);
    CHECK_THAT(h.task(2).error.value_or(""), Catch::Matchers::Contains("the daemon restarted"));
    CHECK(h.running() == std::vector<int64_t>{3});  // other pools resume
    auto pools = h.sched.pools();
    CHECK(find_pool(pools, "map-7") == nullptr);
    CHECK(h.listener.dropped_pools == std::vector<std::string>{"map-7"});
}
