// The scheduler, driven by the fakes of scheduler_harness.hpp: the environment of tasks: kept while needed,
// dropped once finished.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE("a task keeps its env while it runs and between attempts and drops it when it finishes",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"env", {{"K", "V"}}}, {"retries", 1}, {"retry_delay", 1}}));
    CHECK(h.task(id).spec.env());
    h.exit(id, 1);
    CHECK(h.task(id).spec.env());  // needed for the retry
    h.timers.advance(1000);
    REQUIRE(h.spawner.processes.size() == 2);
    REQUIRE(h.spawner.processes[1].spec.env);
    CHECK(h.spawner.processes[1].spec.env->entries() == std::vector<std::string>{"K=V"});
    h.exit(id, 0);
    CHECK_FALSE(h.task(id).spec.env());
}

TEST_CASE("every way of finishing drops the env", "[unit][scheduler]") {
    Harness h(options(1));
    h.spawner.fail_for["bad"] = spawn_error(127, "bad");
    json env = {{"K", "V"}};
    int64_t blocker = h.submit(cmd("blocker", {{"env", env}}));
    int64_t cancelled = h.submit(cmd("cancelled", {{"env", env}}));
    int64_t dependant = h.submit(cmd("dependant", {{"env", env}, {"after", {cancelled}}}));
    int64_t bad = h.submit(cmd("bad", {{"env", env}}));
    int64_t failing = h.submit(cmd("failing", {{"env", env}}));
    REQUIRE(h.sched.cancel(cancelled, false) == CancelResult::cancelled);
    h.exit(blocker, 0);
    h.exit(failing, 1);
    for (int64_t id : {blocker, cancelled, dependant, bad, failing}) {
        INFO("task " << id);
        CHECK(h.task(id).finished());
        CHECK_FALSE(h.task(id).spec.env());
    }

    Harness r;
    Task lost = r.journaled(1, TaskState::running, cmd("lost", {{"env", env}}));
    REQUIRE(lost.spec.env());
    r.sched.restore(std::move(lost));
    r.sched.resume();
    CHECK_FALSE(r.task(1).spec.env());
}

TEST_CASE("unfinished_count counts pending and running tasks", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t a = h.submit(cmd("a"));
    h.submit(cmd("b"));
    h.submit(cmd("c", {{"after", {a}}}));
    CHECK(h.sched.unfinished_count() == 3);
    h.exit(a, 1);  // c fails with it
    CHECK(h.sched.unfinished_count() == 1);
}
