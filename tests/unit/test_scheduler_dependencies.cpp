// The scheduler, driven by the fakes of scheduler_harness.hpp: dependencies (spec.after): waiting for them,
// and failing with reason dependency.

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
