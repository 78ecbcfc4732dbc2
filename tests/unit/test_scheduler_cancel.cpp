// The scheduler, driven by the fakes of scheduler_harness.hpp: cancel (pending and forced) and signals to a
// running task's group.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE("cancel of a pending task cancels it before it starts", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t blocker = h.submit(cmd("blocker"));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b"));
    CHECK(h.sched.cancel(a, false) == CancelResult::cancelled);
    Task& t = h.task(a);
    CHECK(t.state == TaskState::cancelled);
    CHECK(t.reason == FailReason::none);
    CHECK(t.finished_at_ms);
    CHECK(h.listener.states_of(a) == std::vector<TaskState>{TaskState::cancelled});
    CHECK(mpctl::proto::mirror_exit_code(h.status(a)) == 125);
    h.exit(blocker, 0);
    CHECK(h.running() == std::vector<int64_t>{b});  // the cancelled one left the queue
    CHECK(h.spawns_of(a) == 0);
}

TEST_CASE("cancel of a running task without force is refused", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("busy"));
    CHECK(h.sched.cancel(id, false) == CancelResult::running);
    CHECK(h.state(id) == TaskState::running);
    CHECK(h.spawner.signals.empty());
    CHECK(h.listener.states_of(id) == std::vector<TaskState>{TaskState::running});
}

TEST_CASE("cancel of a running task with force sends SIGTERM and ends it cancelled when it exits",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("busy", {{"kill_after", 3}}));
    int pid = h.pid(id);
    CHECK(h.sched.cancel(id, true) == CancelResult::terminating);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGTERM}});
    CHECK(h.state(id) == TaskState::running);  // until it is reaped
    h.kill(id, SIGTERM);
    Task& t = h.task(id);
    CHECK(t.state == TaskState::cancelled);
    CHECK(t.reason == FailReason::none);
    CHECK(t.signal == SIGTERM);
    CHECK(h.listener.states_of(id) == std::vector<TaskState>{TaskState::running, TaskState::cancelled});
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 125);
    h.timers.advance(10000);
    CHECK(h.spawner.signals.size() == 1);
}

TEST_CASE("a forced cancel escalates to SIGKILL after kill_after when SIGTERM is ignored",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("stubborn", {{"kill_after", 3}}));
    int pid = h.pid(id);
    REQUIRE(h.sched.cancel(id, true) == CancelResult::terminating);
    h.timers.advance(2999);
    CHECK(h.spawner.signals.size() == 1);
    h.timers.advance(1);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGTERM}, {pid, SIGKILL}});
    h.kill(id, SIGKILL);
    CHECK(h.state(id) == TaskState::cancelled);
}

TEST_CASE("a forced cancel with kill_after 0 sends SIGKILL at once", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("stubborn", {{"kill_after", 0}}));
    int pid = h.pid(id);
    REQUIRE(h.sched.cancel(id, true) == CancelResult::terminating);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGKILL}});
}

TEST_CASE("a second forced cancel sends no second SIGTERM", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("busy"));
    REQUIRE(h.sched.cancel(id, true) == CancelResult::terminating);
    CHECK(h.sched.cancel(id, true) == CancelResult::terminating);
    CHECK(h.spawner.signals.size() == 1);
}

TEST_CASE("a force-cancelled task is not retried, even if it exits with an error", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"retries", 3}}));
    REQUIRE(h.sched.cancel(id, true) == CancelResult::terminating);
    h.exit(id, 1);
    CHECK(h.state(id) == TaskState::cancelled);
    CHECK(h.task(id).attempts == 1);
    CHECK(h.spawns_of(id) == 1);
}

TEST_CASE("a forced cancel during a timeout's grace period ends the task cancelled, not retried",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("slow", {{"timeout", 1}, {"kill_after", 5}, {"retries", 2}}));
    h.timers.advance(1000);  // timed out: SIGTERM sent, SIGKILL in 5 s
    REQUIRE(h.state(id) == TaskState::running);
    CHECK(h.sched.cancel(id, true) == CancelResult::terminating);
    h.kill(id, SIGTERM);
    CHECK(h.state(id) == TaskState::cancelled);
    CHECK(h.spawns_of(id) == 1);
}

TEST_CASE("a force-cancelled task fails its dependants with reason dependency", "[unit][scheduler]") {
    Harness h(options(2));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    REQUIRE(h.sched.cancel(a, true) == CancelResult::terminating);
    CHECK(h.state(b) == TaskState::pending);
    h.kill(a, SIGTERM);
    CHECK(h.state(b) == TaskState::failed);
    CHECK(h.task(b).reason == FailReason::dependency);
}

TEST_CASE("cancel of a finished or unknown task reports already_finished", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("quick"));
    h.exit(id, 0);
    size_t changes = h.listener.changes.size();
    CHECK(h.sched.cancel(id, false) == CancelResult::already_finished);
    CHECK(h.sched.cancel(id, true) == CancelResult::already_finished);
    CHECK(h.state(id) == TaskState::succeeded);
    CHECK(h.listener.changes.size() == changes);
    CHECK(h.sched.cancel(12345, true) == CancelResult::already_finished);
}

TEST_CASE("signal sends the signal to a running task's process group", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("busy"));
    int pid = h.pid(id);
    CHECK(h.sched.signal(id, SIGUSR1));
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGUSR1}});
    CHECK(h.state(id) == TaskState::running);
    h.kill(id, SIGINT);
    CHECK(h.state(id) == TaskState::failed);
    CHECK(h.task(id).reason == FailReason::signal);
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 130);
}

TEST_CASE("signal refuses tasks that are not running", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t running = h.submit(cmd("busy"));
    int64_t pending = h.submit(cmd("waiting"));
    CHECK_FALSE(h.sched.signal(pending, SIGTERM));
    CHECK_FALSE(h.sched.signal(777, SIGTERM));
    h.exit(running, 0);
    CHECK_FALSE(h.sched.signal(running, SIGTERM));
    CHECK(h.spawner.signals.empty());
}
