// The scheduler, driven by the fakes of scheduler_harness.hpp: a transient pool that halts after N failed
// tasks (pool.set's halt_after_failures, `mpctl map --halt`) starts nothing more, not even in the slot the
// failure that halts it freed.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

namespace {

bool halted(Harness& h, const std::string& name) {
    auto pools = h.sched.pools();
    const auto* p = find_pool(pools, name);
    REQUIRE(p != nullptr);
    return p->halted;
}

}  // namespace

TEST_CASE("the failure that halts a pool frees a slot nobody takes", "[unit][scheduler][halt]") {
    Harness h;
    h.sched.set_pool_workers("map", 1, true, 1);
    int64_t first = h.submit(cmd("first", {{"pool", "map"}}));
    int64_t second = h.submit(cmd("second", {{"pool", "map"}}));
    CHECK_FALSE(halted(h, "map"));
    h.exit(first, 1);
    CHECK(h.state(first) == TaskState::failed);
    CHECK(halted(h, "map"));
    CHECK(h.state(second) == TaskState::pending);
    CHECK(h.spawns_of(second) == 0);
    // Its owner then cancels what is left, as `mpctl map` does.
    CHECK(h.sched.cancel(second, false) == CancelResult::cancelled);
}

TEST_CASE("successes, retried failures and cancels do not count towards a halt", "[unit][scheduler][halt]") {
    Harness h;
    h.sched.set_pool_workers("map", 1, true, 2);
    int64_t ok = h.submit(cmd("ok", {{"pool", "map"}}));
    int64_t retried = h.submit(cmd("retried", {{"pool", "map"}, {"retries", 1}}));
    int64_t cancelled = h.submit(cmd("cancelled", {{"pool", "map"}}));
    int64_t fails = h.submit(cmd("fails", {{"pool", "map"}}));
    h.exit(ok, 0);
    REQUIRE(h.sched.cancel(cancelled, false) == CancelResult::cancelled);
    h.exit(retried, 1);  // attempt 1 of 2: back to the queue, behind `fails`
    CHECK_FALSE(halted(h, "map"));
    h.exit(fails, 1);  // failure 1 of 2
    CHECK_FALSE(halted(h, "map"));
    h.exit(retried, 1);  // its last attempt: failure 2 of 2
    CHECK(h.state(retried) == TaskState::failed);
    CHECK(halted(h, "map"));
    int64_t later = h.submit(cmd("later", {{"pool", "map"}}));
    CHECK(h.state(later) == TaskState::pending);
    CHECK(h.spawns_of(later) == 0);
}

TEST_CASE("a task that cannot start counts as a failure and halts the pool", "[unit][scheduler][halt]") {
    Harness h;
    h.spawner.fail_for["nosuch"] = spawn_error(127, "command not found: nosuch");
    h.sched.set_pool_workers("map", 1, true, 1);
    int64_t missing = h.submit(cmd("nosuch", {{"pool", "map"}}));
    int64_t next = h.submit(cmd("next", {{"pool", "map"}}));
    CHECK(h.state(missing) == TaskState::failed);
    CHECK(halted(h, "map"));
    CHECK(h.spawns_of(next) == 0);
}

TEST_CASE("pools without a halt, and pools that are not transient, never halt", "[unit][scheduler][halt]") {
    Harness h;
    h.sched.set_pool_workers("plain", 1, false, 1);  // ignored: only a transient pool halts
    int64_t a = h.submit(cmd("a", {{"pool", "plain"}}));
    int64_t b = h.submit(cmd("b", {{"pool", "plain"}}));
    h.exit(a, 1);
    CHECK_FALSE(halted(h, "plain"));
    CHECK(h.state(b) == TaskState::running);
}
