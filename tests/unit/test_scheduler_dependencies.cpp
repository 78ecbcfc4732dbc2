// The scheduler, driven by the fakes of scheduler_harness.hpp: dependencies (spec.after): waiting for them,
// and failing with reason dependency.

#include <mpctl/common/time.hpp>

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE("a task runs only after all its dependencies succeeded", "[unit][scheduler]") {
    Harness h(options(4));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b"));
    int64_t c = h.submit(cmd("c", {{"after", {a, b}}}));
    CHECK(h.running() == std::vector<int64_t>{a, b});
    CHECK(h.state(c) == TaskState::pending);
    h.exit(a, 0);
    CHECK(h.state(c) == TaskState::pending);
    CHECK(h.spawns_of(c) == 0);
    h.exit(b, 0);
    CHECK(h.state(c) == TaskState::running);
    h.exit(c, 0);
    CHECK(h.state(c) == TaskState::succeeded);
}

TEST_CASE("a failed dependency fails its dependants with reason dependency", "[unit][scheduler]") {
    Harness h(options(4));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b"));
    int64_t c = h.submit(cmd("c", {{"after", {a, b}}}));
    h.exit(a, 2);
    Task& t = h.task(c);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::dependency);
    CHECK(t.finished_at_ms);
    REQUIRE(t.error);
    CHECK(t.error->find(std::to_string(a)) != std::string::npos);
    CHECK(h.spawns_of(c) == 0);
    CHECK(h.listener.states_of(c) == std::vector<TaskState>{TaskState::failed});
    CHECK(mpctl::proto::mirror_exit_code(h.status(c)) == 125);
    // The other dependency is not affected.
    CHECK(h.state(b) == TaskState::running);
    h.exit(b, 0);
    CHECK(h.state(c) == TaskState::failed);
    CHECK(h.spawns_of(c) == 0);
}

TEST_CASE("a cancelled dependency fails its dependants with reason dependency", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t blocker = h.submit(cmd("blocker"));
    int64_t a = h.submit(cmd("a"));
    int64_t c = h.submit(cmd("c", {{"after", {a}}}));
    CHECK(h.sched.cancel(a, false) == CancelResult::cancelled);
    CHECK(h.state(c) == TaskState::failed);
    CHECK(h.task(c).reason == FailReason::dependency);
    h.exit(blocker, 0);
    CHECK(h.running().empty());
    CHECK(h.spawns_of(c) == 0);
}

TEST_CASE("a dependency failure cascades through a chain of dependants", "[unit][scheduler]") {
    Harness h(options(4));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    int64_t c = h.submit(cmd("c", {{"after", {b}}}));
    int64_t d = h.submit(cmd("d", {{"after", {c}}}));
    int64_t side = h.submit(cmd("side", {{"after", {b}}}));
    h.kill(a, SIGKILL);
    for (int64_t id : {b, c, d, side}) {
        INFO("task " << id);
        CHECK(h.state(id) == TaskState::failed);
        CHECK(h.task(id).reason == FailReason::dependency);
        CHECK(h.listener.states_of(id) == std::vector<TaskState>{TaskState::failed});
        CHECK(h.spawns_of(id) == 0);
    }
    CHECK(h.sched.unfinished_count() == 0);
}

TEST_CASE("a successful chain runs one task after the other", "[unit][scheduler]") {
    Harness h(options(4));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    int64_t c = h.submit(cmd("c", {{"after", {b}}}));
    CHECK(h.running() == std::vector<int64_t>{a});
    h.exit(a, 0);
    CHECK(h.running() == std::vector<int64_t>{b});
    h.exit(b, 0);
    CHECK(h.running() == std::vector<int64_t>{c});
    h.exit(c, 0);
    CHECK(h.listener.started() == std::vector<int64_t>{a, b, c});
}

TEST_CASE("a dependency that already succeeded does not hold a task back", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t a = h.submit(cmd("a"));
    h.exit(a, 0);
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    CHECK(h.state(b) == TaskState::running);
}

TEST_CASE("a dependency that already failed or was cancelled fails a new task at once", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t a = h.submit(cmd("a"));
    h.exit(a, 1);
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    CHECK(h.state(b) == TaskState::failed);
    CHECK(h.task(b).reason == FailReason::dependency);
    CHECK(h.listener.states_of(b) == std::vector<TaskState>{TaskState::failed});

    int64_t blocker = h.submit(cmd("blocker"));
    int64_t x = h.submit(cmd("x"));
    REQUIRE(h.sched.cancel(x, false) == CancelResult::cancelled);
    int64_t y = h.submit(cmd("y", {{"after", {x}}}));
    CHECK(h.state(y) == TaskState::failed);
    CHECK(h.task(y).reason == FailReason::dependency);
    CHECK(h.state(blocker) == TaskState::running);
    CHECK(h.spawns_of(b) == 0);
    CHECK(h.spawns_of(y) == 0);
}

TEST_CASE("a dependency on an unknown task fails the task at once", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t b = h.submit(cmd("b", {{"after", {999}}}));
    CHECK(h.state(b) == TaskState::failed);
    CHECK(h.task(b).reason == FailReason::dependency);
    CHECK(h.spawner.processes.empty());
}

TEST_CASE("dependants keep waiting while a dependency is retried and run when it succeeds",
          "[unit][scheduler]") {
    Harness h(options(2));
    int64_t a = h.submit(cmd("a", {{"retries", 1}}));
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    h.exit(a, 1);
    CHECK(h.state(a) == TaskState::running);  // the retry, with no delay
    CHECK(h.state(b) == TaskState::pending);
    h.exit(a, 0);
    CHECK(h.state(b) == TaskState::running);
}

TEST_CASE("a released dependant waits for a free slot in its own pool", "[unit][scheduler]") {
    Harness h(options(1, {{"small", 1}}));
    int64_t a = h.submit(cmd("a"));
    int64_t busy = h.submit(cmd("busy", {{"pool", "small"}}));
    int64_t b = h.submit(cmd("b", {{"pool", "small"}, {"after", {a}}}));
    h.exit(a, 0);
    CHECK(h.state(b) == TaskState::pending);
    h.exit(busy, 0);
    CHECK(h.state(b) == TaskState::running);
}

TEST_CASE("a task listing the same dependency twice runs once it succeeded", "[unit][scheduler]") {
    Harness h(options(2));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b", {{"after", {a, a}}}));
    h.exit(a, 0);
    CHECK(h.state(b) == TaskState::running);
}

// -- a backend that holds dependants itself (Slurm's afterok)
// ------------------------------------------------

TEST_CASE("a dependant of a backend that holds is handed over behind its running dependency",
          "[unit][scheduler]") {
    Harness h(options(4));
    h.spawner.holding_pools = {"hpc"};
    int64_t a = h.submit(cmd("a", {{"pool", "hpc"}}));
    int64_t b = h.submit(cmd("b", {{"pool", "hpc"}, {"after", {a}}}));
    REQUIRE(h.state(b) == TaskState::running);
    CHECK(h.spawner.process(h.pid(b)).spec.after == std::vector<int>{h.pid(a)});
    CHECK(h.spawner.process(h.pid(b)).spec.on_began);  // its backend tells when it begins
    // Its dependency's success changes nothing for it; its own end is its outcome.
    h.exit(a, 0);
    CHECK(h.state(b) == TaskState::running);
    CHECK(h.spawns_of(b) == 1);
    h.exit(b, 0);
    CHECK(h.state(b) == TaskState::succeeded);
    // A local pool's dependant is not, nor one of a holding pool behind a local task.
    int64_t c = h.submit(cmd("c"));
    CHECK_FALSE(h.spawner.process(h.pid(c)).spec.on_began);  // a process began at its start
    int64_t d = h.submit(cmd("d", {{"after", {c}}}));
    int64_t e = h.submit(cmd("e", {{"pool", "hpc"}, {"after", {c}}}));
    CHECK(h.state(d) == TaskState::pending);
    CHECK(h.state(e) == TaskState::pending);
    h.exit(c, 0);
    CHECK(h.spawner.process(h.pid(e)).spec.after.empty());
}

TEST_CASE("a dependant is held by the backend only once its dependency is on its last attempt",
          "[unit][scheduler]") {
    Harness h(options(4));
    h.spawner.holding_pools = {"hpc"};
    int64_t a = h.submit(cmd("a", {{"pool", "hpc"}, {"retries", 1}}));
    int64_t b = h.submit(cmd("b", {{"pool", "hpc"}, {"after", {a}}}));
    CHECK(h.state(b) == TaskState::pending);  // a failure of this attempt would be retried, not b's end
    h.exit(a, 1);
    REQUIRE(h.task(a).attempts == 2);
    REQUIRE(h.state(a) == TaskState::running);
    CHECK(h.state(b) == TaskState::running);
    CHECK(h.spawner.process(h.pid(b)).spec.after == std::vector<int>{h.pid(a)});
}

TEST_CASE("a dependant waiting for two is held once the one left runs in the backend", "[unit][scheduler]") {
    Harness h(options(4));
    h.spawner.holding_pools = {"hpc"};
    int64_t local = h.submit(cmd("local"));
    int64_t a = h.submit(cmd("a", {{"pool", "hpc"}}));
    int64_t b = h.submit(cmd("b", {{"pool", "hpc"}, {"after", {local, a}}}));
    CHECK(h.state(b) == TaskState::pending);
    h.exit(local, 0);
    REQUIRE(h.state(b) == TaskState::running);
    CHECK(h.spawner.process(h.pid(b)).spec.after == std::vector<int>{h.pid(a)});
}

TEST_CASE("a held dependant whose dependency fails is stopped and fails with reason dependency",
          "[unit][scheduler]") {
    Harness h(options(4));
    h.spawner.holding_pools = {"hpc"};
    int64_t a = h.submit(cmd("a", {{"pool", "hpc"}}));
    int64_t b = h.submit(cmd("b", {{"pool", "hpc"}, {"after", {a}}, {"kill_after", 3}}));
    int64_t c = h.submit(cmd("c", {{"pool", "hpc"}, {"after", {b}}}));
    int pb = h.pid(b);
    REQUIRE(h.state(c) == TaskState::running);  // held behind b, itself held behind a
    int pc = h.pid(c);
    h.exit(a, 2);
    CHECK(h.spawner.signals_to(pb) == std::vector<std::pair<int, int>>{{pb, SIGTERM}});
    CHECK(h.state(b) == TaskState::running);
    CHECK(h.state(c) == TaskState::running);
    h.kill(b, SIGTERM);  // the backend cancelled it
    Task& tb = h.task(b);
    CHECK(tb.state == TaskState::failed);
    CHECK(tb.reason == FailReason::dependency);
    REQUIRE(tb.error);
    CHECK(*tb.error == "dependency " + std::to_string(a) + " failed");
    CHECK(tb.attempts == 1);  // not retried
    // b's failure stops c in turn.
    CHECK(h.spawner.signals_to(pc) == std::vector<std::pair<int, int>>{{pc, SIGTERM}});
    h.kill(c, SIGTERM);
    CHECK(h.task(c).reason == FailReason::dependency);
    CHECK(h.running().empty());
}

TEST_CASE("a held task's timeout counts from when its backend says it began", "[unit][scheduler]") {
    Harness h(options(4));
    h.spawner.holding_pools = {"hpc"};
    int64_t a = h.submit(cmd("a", {{"pool", "hpc"}}));
    int64_t b = h.submit(cmd("b", {{"pool", "hpc"}, {"after", {a}}, {"timeout", 2}}));
    int pb = h.pid(b);
    h.timers.advance(60000);
    CHECK(h.spawner.signals.empty());
    h.exit(a, 0);
    auto& began = h.spawner.process(pb).spec.on_began;
    REQUIRE(began);
    int64_t at = mpctl::common::now_unix_ms();
    began(at);
    CHECK(h.task(b).started_at_ms == at);
    h.timers.advance(1999);
    CHECK(h.spawner.signals.empty());
    h.timers.advance(1);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pb, SIGTERM}});
}
