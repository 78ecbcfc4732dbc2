// The scheduler, driven by the fakes of scheduler_harness.hpp: retries: attempts, retry delays, what is and
// is not retried.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE("a failing task is retried spec.retries times and then fails with its last outcome",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"retries", 2}}));
    h.exit(id, 1);
    CHECK(h.state(id) == TaskState::running);
    CHECK(h.task(id).attempts == 2);
    h.exit(id, 2);
    CHECK(h.state(id) == TaskState::running);
    CHECK(h.task(id).attempts == 3);
    h.exit(id, 7);
    Task& t = h.task(id);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::exit);
    CHECK(t.exit_code == 7);
    CHECK(t.attempts == 3);
    CHECK(h.spawns_of(id) == 3);
    CHECK(h.listener.states_of(id) == std::vector<TaskState>{TaskState::running, TaskState::pending,
                                                             TaskState::running, TaskState::pending,
                                                             TaskState::running, TaskState::failed});
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 7);
}

TEST_CASE("a retried task that then succeeds ends succeeded with its attempts counted", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"retries", 3}}));
    h.exit(id, 1);
    h.exit(id, 0);
    Task& t = h.task(id);
    CHECK(t.state == TaskState::succeeded);
    CHECK(t.reason == FailReason::none);
    CHECK(t.attempts == 2);
    CHECK(h.spawns_of(id) == 2);
}

TEST_CASE("between attempts a task is pending and says it will retry", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"retries", 1}, {"retry_delay", 2}}));
    h.exit(id, 4);
    Task& t = h.task(id);
    CHECK(t.state == TaskState::pending);
    CHECK(t.attempts == 1);
    CHECK_FALSE(t.pid);
    CHECK_FALSE(t.finished_at_ms);
    REQUIRE(t.error);
    CHECK(t.error->find("retry") != std::string::npos);
    CHECK(h.listener.changes.back().state == TaskState::pending);
}

TEST_CASE("a retry waits for retry_delay before it starts", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"retries", 1}, {"retry_delay", 1.5}}));
    h.exit(id, 1);
    CHECK(h.state(id) == TaskState::pending);
    CHECK(h.spawns_of(id) == 1);
    h.timers.advance(1499);
    CHECK(h.spawns_of(id) == 1);
    CHECK(h.state(id) == TaskState::pending);
    h.timers.advance(1);
    CHECK(h.spawns_of(id) == 2);
    CHECK(h.state(id) == TaskState::running);
    CHECK(h.task(id).attempts == 2);
}

TEST_CASE("a task in its retry delay does not take a pool slot", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t flaky = h.submit(cmd("flaky", {{"retries", 1}, {"retry_delay", 10}}));
    int64_t other = h.submit(cmd("other"));
    h.exit(flaky, 1);
    CHECK(h.state(other) == TaskState::running);
    h.timers.advance(10000);
    CHECK(h.state(flaky) == TaskState::pending);  // ready, waiting for the slot
    h.exit(other, 0);
    CHECK(h.state(flaky) == TaskState::running);
}

TEST_CASE("a task killed by a signal is retried and fails with reason signal at the end",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("crash", {{"retries", 1}}));
    h.kill(id, SIGKILL);
    CHECK(h.state(id) == TaskState::running);
    h.kill(id, SIGKILL);
    Task& t = h.task(id);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::signal);
    CHECK(t.signal == SIGKILL);
    CHECK(t.attempts == 2);
}

TEST_CASE("a spawn failure is not retried", "[unit][scheduler]") {
    Harness h;
    h.spawner.fail_for["missing"] = spawn_error(127, "missing: No such file or directory");
    int64_t id = h.submit(cmd("missing", {{"retries", 3}}));
    Task& t = h.task(id);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::spawn);
    CHECK(t.attempts == 1);
    CHECK(h.spawner.spawn_calls == 1);
    CHECK(h.timers.pending() == 0);
}

TEST_CASE("cancelling a task in its retry delay cancels it and its retry", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"retries", 1}, {"retry_delay", 5}}));
    h.exit(id, 1);
    CHECK(h.sched.cancel(id, false) == CancelResult::cancelled);
    CHECK(h.state(id) == TaskState::cancelled);
    h.timers.advance(60000);
    CHECK(h.spawns_of(id) == 1);
    CHECK(h.state(id) == TaskState::cancelled);
    CHECK(h.timers.pending() == 0);
}
