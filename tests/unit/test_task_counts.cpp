// TaskCounts alone, and the scheduler's counts through every kind of change of a task, checked against a
// walk of the task table (what pool.list and daemon.status computed before the counts existed).

#include <mpctl/daemon/tasks/task_counts.hpp>

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;
using mpctl::daemon::TaskCounts;

namespace {

// What the counts must say, from a walk of the whole table.
void check_counts(Harness& h) {
    std::map<TaskState, size_t> by_state;
    std::map<std::string, int> waiting;
    std::map<std::string, size_t> unfinished;
    for (const auto& [id, t] : h.sched.tasks()) {
        if (t.durable) {
            ++by_state[t.state];
        }
        if (t.state == TaskState::pending && !t.queued && t.durable) {
            ++waiting[t.spec.pool()];
        }
        unfinished[t.spec.pool()] += t.finished() ? 0 : 1;
    }
    for (auto st : {TaskState::pending, TaskState::running, TaskState::succeeded, TaskState::failed,
                    TaskState::cancelled}) {
        INFO("state " << mpctl::proto::to_string(st));
        CHECK(h.sched.count(st) == by_state[st]);
    }
    CHECK(h.sched.unfinished_count() == by_state[TaskState::pending] + by_state[TaskState::running]);
    for (const auto& p : h.sched.pools()) {
        INFO("pool " << p.name);
        CHECK(p.waiting == waiting[p.name]);
        size_t queued = 0;
        for (const auto& [id, t] : h.sched.tasks()) {
            queued += t.queued && t.spec.pool() == p.name ? 1 : 0;
        }
        CHECK(static_cast<size_t>(p.pending) == queued);
    }
}

}  // namespace

TEST_CASE("TaskCounts moves a task between states, overall and in its pool", "[unit][counts]") {
    TaskCounts c;
    TaskCounts::Mark a;
    c.update("p", a, TaskState::pending, false);  // submitted, not committed yet
    CHECK(c.in_state(TaskState::pending) == 0);
    CHECK(c.pending("p") == 0);
    CHECK(c.unfinished("p") == 1);
    c.update("p", a, TaskState::pending, true);
    CHECK(c.in_state(TaskState::pending) == 1);
    CHECK(c.pending("p") == 1);
    CHECK(c.unfinished("p") == 1);
    c.update("p", a, TaskState::pending, true);  // no change: counted once
    CHECK(c.in_state(TaskState::pending) == 1);
    c.update("p", a, TaskState::running, true);
    CHECK(c.in_state(TaskState::pending) == 0);
    CHECK(c.in_state(TaskState::running) == 1);
    CHECK(c.pending("p") == 0);
    CHECK(c.unfinished("p") == 1);
    c.update("p", a, TaskState::succeeded, true);
    CHECK(c.in_state(TaskState::running) == 0);
    CHECK(c.in_state(TaskState::succeeded) == 1);
    CHECK(c.unfinished("p") == 0);
    CHECK(c.unfinished("other") == 0);
}

TEST_CASE("TaskCounts forgets a removed task, and removing twice does nothing", "[unit][counts]") {
    TaskCounts c;
    TaskCounts::Mark a;
    TaskCounts::Mark b;
    c.update("p", a, TaskState::pending, false);
    c.update("q", b, TaskState::pending, true);
    c.remove("p", a);
    c.remove("p", a);
    CHECK(c.unfinished("p") == 0);
    CHECK(c.unfinished("q") == 1);
    CHECK(c.in_state(TaskState::pending) == 1);
    c.update("p", a, TaskState::pending, true);  // counted again from nothing
    CHECK(c.in_state(TaskState::pending) == 2);
}

TEST_CASE("counts follow a task from queued to running to finished", "[unit][counts]") {
    Harness h(options(1));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b"));
    Task& c = h.sched.add(mpctl::proto::parse_task_spec(cmd("c")), 1000);  // being committed
    check_counts(h);
    CHECK(h.sched.count(TaskState::running) == 1);
    CHECK(h.sched.count(TaskState::pending) == 1);  // c is not visible yet
    h.sched.make_durable(c.id);
    h.sched.schedule(c.id);
    check_counts(h);
    h.exit(a, 0);
    check_counts(h);
    h.exit(b, 3);
    check_counts(h);
    h.kill(c.id, SIGKILL);
    check_counts(h);
    CHECK(h.sched.count(TaskState::succeeded) == 1);
    CHECK(h.sched.count(TaskState::failed) == 2);
    CHECK(h.sched.unfinished_count() == 0);
}

TEST_CASE("counts follow cancels, discards and spawn failures", "[unit][counts]") {
    Harness h(options(1));
    h.spawner.fail_for.emplace("missing", spawn_error(127, "command not found: missing"));
    int64_t running = h.submit(cmd("a"));
    int64_t queued = h.submit(cmd("b"));
    Task& uncommitted = h.sched.add(mpctl::proto::parse_task_spec(cmd("c")), 1000);
    h.sched.discard(uncommitted.id);
    check_counts(h);
    CHECK(h.sched.cancel(queued, false) == CancelResult::cancelled);
    check_counts(h);
    CHECK(h.sched.cancel(running, true) == CancelResult::terminating);
    h.kill(running, SIGTERM);
    check_counts(h);
    h.submit(cmd("missing"));
    check_counts(h);
    CHECK(h.sched.count(TaskState::cancelled) == 2);
    CHECK(h.sched.count(TaskState::failed) == 1);
}

TEST_CASE("counts follow retries, with and without a delay", "[unit][counts]") {
    Harness h(options(2));
    int64_t now = h.submit(cmd("a", {{"retries", 1}}));
    int64_t later = h.submit(cmd("b", {{"retries", 1}, {"retry_delay", 2}}));
    h.exit(now, 1);
    h.exit(later, 1);
    check_counts(h);  // a runs again; b waits for its delay
    auto pools = h.sched.pools();
    CHECK(find_pool(pools, "default")->waiting == 1);
    h.timers.advance(2000);
    check_counts(h);
    h.exit(now, 0);
    h.exit(later, 0);
    check_counts(h);
    CHECK(h.sched.count(TaskState::succeeded) == 2);
}

TEST_CASE("counts follow dependencies that succeed and that fail", "[unit][counts]") {
    Harness h(options(2));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    int64_t c = h.submit(cmd("c", {{"after", {b}}}));
    int64_t x = h.submit(cmd("x"));
    int64_t y = h.submit(cmd("y", {{"after", {x}}, {"pool", "other"}}));
    check_counts(h);
    auto pools = h.sched.pools();
    CHECK(find_pool(pools, "default")->waiting == 2);
    CHECK(find_pool(pools, "other")->waiting == 1);
    h.exit(a, 0);
    check_counts(h);
    h.exit(x, 1);  // y fails with reason dependency
    check_counts(h);
    CHECK(h.state(y) == TaskState::failed);
    h.exit(b, 1);  // and so does c
    check_counts(h);
    CHECK(h.state(c) == TaskState::failed);
    CHECK(h.sched.count(TaskState::failed) == 4);
}

TEST_CASE("counts follow transient pools through their owner's end and their drop", "[unit][counts]") {
    Harness h(options(4));
    h.sched.set_pool_workers("map-1", 1, true);
    int64_t running = h.submit(cmd("a", {{"pool", "map-1"}}));
    h.submit(cmd("b", {{"pool", "map-1"}}));
    Task& late = h.sched.add(mpctl::proto::parse_task_spec(cmd("c", {{"pool", "map-1"}})), 1000);
    h.sched.release_transient_pool("map-1");
    check_counts(h);
    h.exit(running, 0);
    auto pools = h.sched.pools();
    CHECK(find_pool(pools, "map-1") != nullptr);  // not while a submit to it is being committed
    h.sched.make_durable(late.id);
    h.sched.schedule(late.id);  // cancelled: its owner is gone; the pool goes with it
    check_counts(h);
    pools = h.sched.pools();
    CHECK(find_pool(pools, "map-1") == nullptr);
    CHECK(h.sched.count(TaskState::cancelled) == 2);
}

TEST_CASE("counts follow a restore from the journal and the resume", "[unit][counts]") {
    Harness h(options(1));
    Task lost = h.journaled(1, TaskState::running, cmd("a"));
    lost.pid = 4242;
    lost.attempts = 1;
    h.sched.restore(std::move(lost));
    h.sched.restore(h.journaled(2, TaskState::succeeded, cmd("b")));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("c")));
    h.sched.restore(h.journaled(4, TaskState::pending, cmd("d", {{"after", {3}}})));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("c")));  // the same row twice counts once
    check_counts(h);
    CHECK(h.sched.count(TaskState::running) == 1);
    h.sched.resume();
    check_counts(h);
    CHECK(h.sched.count(TaskState::failed) == 1);  // lost
    CHECK(h.sched.count(TaskState::running) == 1);
    h.exit(3, 0);
    h.exit(4, 0);
    check_counts(h);
    CHECK(h.sched.count(TaskState::succeeded) == 3);
}

TEST_CASE("counts follow a shutdown that cancels the queue and terminates what runs", "[unit][counts]") {
    Harness h(options(1));
    int64_t a = h.submit(cmd("a"));
    h.submit(cmd("b"));
    h.submit(cmd("c", {{"pool", "other"}, {"after", {a}}}));
    h.sched.stop_starting();
    h.sched.cancel_pending();
    check_counts(h);
    h.sched.terminate_running(0.0);
    h.kill(a, SIGKILL);
    check_counts(h);
    CHECK(h.sched.count(TaskState::cancelled) == 3);
    CHECK(h.sched.unfinished_count() == 0);
}
