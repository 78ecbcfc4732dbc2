// The scheduler, driven by the fakes of scheduler_harness.hpp: restore after a restart and resume: lost
// tasks, queues, dependencies among restored tasks.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE("resume turns tasks that were running into failed with reason lost", "[unit][scheduler]") {
    Harness h;
    Task t = h.journaled(5, TaskState::running, cmd("long"));
    t.pid = 4242;
    t.attempts = 1;
    t.started_at_ms = 600;
    h.sched.restore(std::move(t));
    CHECK(h.listener.changes.empty());
    h.sched.resume();
    Task& r = h.task(5);
    CHECK(r.state == TaskState::failed);
    CHECK(r.reason == FailReason::lost);
    CHECK_FALSE(r.pid);
    CHECK(r.finished_at_ms);
    CHECK(r.error);
    CHECK(r.attempts == 1);
    CHECK(h.spawner.processes.empty());
    CHECK(h.spawner.signals.empty());
    CHECK(h.listener.states_of(5) == std::vector<TaskState>{TaskState::failed});
    CHECK(mpctl::proto::mirror_exit_code(h.status(5)) == 125);
    CHECK(h.sched.running_count() == 0);
}

TEST_CASE("resume queues restored pending tasks by priority, then id", "[unit][scheduler]") {
    Harness h(options(1));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("c")));
    h.sched.restore(h.journaled(1, TaskState::pending, cmd("a")));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("b", {{"priority", 1}})));
    CHECK(h.spawner.processes.empty());  // nothing runs before resume
    h.sched.resume();
    CHECK(h.running() == std::vector<int64_t>{2});
    h.exit(2, 0);
    CHECK(h.running() == std::vector<int64_t>{1});
    h.exit(1, 0);
    CHECK(h.running() == std::vector<int64_t>{3});
}

TEST_CASE("restore moves the id counter past every restored id", "[unit][scheduler]") {
    Harness h;
    h.sched.restore(h.journaled(41, TaskState::succeeded, cmd("old")));
    h.sched.restore(h.journaled(7, TaskState::failed, cmd("older")));
    CHECK(h.sched.next_id() == 42);
    h.sched.resume();
    CHECK(h.submit(cmd("new")) == 42);
}

TEST_CASE("restored tasks are durable and visible", "[unit][scheduler]") {
    Harness h;
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("p")));
    CHECK(h.task(3).durable);
}

TEST_CASE("restored finished tasks keep their outcome, drop their env and are not reported again",
          "[unit][scheduler]") {
    Harness h;
    Task done = h.journaled(1, TaskState::failed, cmd("x", {{"env", {{"SECRET", "s"}}}}));
    done.reason = FailReason::exit;
    done.exit_code = 9;
    done.finished_at_ms = 900;
    REQUIRE(done.spec.env());
    h.sched.restore(std::move(done));
    h.sched.resume();
    Task& t = h.task(1);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::exit);
    CHECK(t.exit_code == 9);
    CHECK(t.finished_at_ms == 900);
    CHECK_FALSE(t.spec.env());
    CHECK(h.listener.changes.empty());
    CHECK(h.spawner.processes.empty());
}

TEST_CASE("resume resolves dependencies among restored tasks", "[unit][scheduler]") {
    Harness h(options(4));
    h.sched.restore(h.journaled(1, TaskState::succeeded, cmd("done")));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("after-done", {{"after", {1}}})));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("first")));
    h.sched.restore(h.journaled(4, TaskState::pending, cmd("after-first", {{"after", {3}}})));
    h.sched.resume();
    CHECK(h.running() == std::vector<int64_t>{2, 3});
    CHECK(h.state(4) == TaskState::pending);
    h.exit(3, 0);
    CHECK(h.state(4) == TaskState::running);
}

TEST_CASE("resume fails the dependants of a task that was lost", "[unit][scheduler]") {
    Harness h(options(4));
    Task lost = h.journaled(1, TaskState::running, cmd("lost"));
    lost.pid = 100;
    h.sched.restore(std::move(lost));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("child", {{"after", {1}}})));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("grandchild", {{"after", {2}}})));
    h.sched.resume();
    CHECK(h.task(1).reason == FailReason::lost);
    CHECK(h.state(2) == TaskState::failed);
    CHECK(h.task(2).reason == FailReason::dependency);
    CHECK(h.state(3) == TaskState::failed);
    CHECK(h.task(3).reason == FailReason::dependency);
    CHECK(h.spawner.processes.empty());
    CHECK(h.listener.states_of(2) == std::vector<TaskState>{TaskState::failed});
    CHECK(h.listener.states_of(3) == std::vector<TaskState>{TaskState::failed});
}

TEST_CASE("resume fails restored pending tasks whose dependency had failed or is missing",
          "[unit][scheduler]") {
    Harness h(options(4));
    Task failed = h.journaled(1, TaskState::failed, cmd("failed"));
    failed.reason = FailReason::exit;
    h.sched.restore(std::move(failed));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("child", {{"after", {1}}})));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("orphan", {{"after", {99}}})));
    h.sched.resume();
    CHECK(h.task(2).reason == FailReason::dependency);
    CHECK(h.task(3).reason == FailReason::dependency);
    CHECK(h.spawner.processes.empty());
}

TEST_CASE("restored pending tasks in named pools run in those pools", "[unit][scheduler]") {
    Harness h(options(1, {{"gpu", 2}}));
    h.sched.restore(h.journaled(1, TaskState::pending, cmd("a", {{"pool", "gpu"}})));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("b", {{"pool", "gpu"}})));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("c")));
    h.sched.resume();
    CHECK(h.running() == std::vector<int64_t>{1, 2, 3});
}
