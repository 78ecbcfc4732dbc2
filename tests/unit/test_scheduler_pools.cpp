// The scheduler, driven by the fakes of scheduler_harness.hpp: worker pools: sizes, priorities, queues,
// configured and named pools.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE("a pool runs at most its number of workers at once", "[unit][scheduler]") {
    Harness h(options(2));
    std::vector<int64_t> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(h.submit(cmd("t" + std::to_string(i))));
        // Tasks wait for a slot from the third on (the journal then groups the ends it tells).
        CHECK(h.sched.tasks_wait_for_slots() == (i >= 2));
    }
    CHECK(h.running() == std::vector<int64_t>{ids[0], ids[1]});
    CHECK(h.sched.running_count() == 2);
    auto pools = h.sched.pools();
    const auto* def = find_pool(pools, "default");
    REQUIRE(def != nullptr);
    CHECK(def->workers == 2);
    CHECK(def->running == 2);
    CHECK(def->pending == 3);
    CHECK(def->waiting == 0);

    h.exit(ids[1], 0);
    CHECK(h.running() == std::vector<int64_t>{ids[0], ids[2]});
    h.exit(ids[0], 1);  // a failure frees its slot too
    CHECK(h.running() == std::vector<int64_t>{ids[2], ids[3]});
    CHECK(h.sched.tasks_wait_for_slots());
    h.exit(ids[2], 0);
    CHECK_FALSE(h.sched.tasks_wait_for_slots());  // the last one took the free slot
    h.exit(ids[3], 0);
    CHECK(h.running() == std::vector<int64_t>{ids[4]});
    h.exit(ids[4], 0);
    CHECK(h.running().empty());
    CHECK(h.sched.running_count() == 0);
    CHECK(h.listener.started() == ids);
}

TEST_CASE("ready tasks start by priority, highest first, then in submission order", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t blocker = h.submit(cmd("blocker"));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b", {{"priority", 5}}));
    int64_t c = h.submit(cmd("c"));
    int64_t d = h.submit(cmd("d", {{"priority", 5}}));
    int64_t e = h.submit(cmd("e", {{"priority", -1}}));
    int64_t f = h.submit(cmd("f", {{"priority", 10}}));

    std::vector<int64_t> order;
    int64_t current = blocker;
    for (int i = 0; i < 6; ++i) {
        h.exit(current, 0);
        auto r = h.running();
        REQUIRE(r.size() == 1);
        current = r.front();
        order.push_back(current);
    }
    CHECK(order == std::vector<int64_t>{f, b, d, a, c, e});
}

TEST_CASE("configured pools are listed before their first task and used with their size",
          "[unit][scheduler]") {
    Harness h(options(1, {{"gpu", 2}}));
    const auto before = h.sched.pools();
    const auto* listed = find_pool(before, "gpu");
    REQUIRE(listed != nullptr);
    CHECK(listed->workers == 2);
    CHECK(listed->running == 0);
    CHECK(h.sched.pool_workers("gpu") == 2);
    int64_t a = h.submit(cmd("a", {{"pool", "gpu"}}));
    int64_t b = h.submit(cmd("b", {{"pool", "gpu"}}));
    int64_t c = h.submit(cmd("c", {{"pool", "gpu"}}));
    CHECK(h.running() == std::vector<int64_t>{a, b});
    CHECK(h.state(c) == TaskState::pending);
    auto pools = h.sched.pools();
    const auto* gpu = find_pool(pools, "gpu");
    REQUIRE(gpu != nullptr);
    CHECK(gpu->workers == 2);
    CHECK(gpu->running == 2);
    CHECK(gpu->pending == 1);
    CHECK(h.status(a).pool == "gpu");
}

TEST_CASE("named pools without a configured size get the default size", "[unit][scheduler]") {
    Harness h(options(3));
    CHECK(h.sched.pool_workers("batch") == 3);
    for (int i = 0; i < 4; ++i) {
        h.submit(cmd("t", {{"pool", "batch"}}));
    }
    CHECK(h.running().size() == 3);
    const auto pools_now = h.sched.pools();
    const auto* batch = find_pool(pools_now, "batch");
    REQUIRE(batch != nullptr);
    CHECK(batch->workers == 3);
}

TEST_CASE("a full pool does not hold back tasks of another pool", "[unit][scheduler]") {
    Harness h(options(1, {{"io", 1}}));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b"));
    int64_t c = h.submit(cmd("c", {{"pool", "io"}}));
    CHECK(h.running() == std::vector<int64_t>{a, c});
    CHECK(h.state(b) == TaskState::pending);
    h.exit(c, 0);
    CHECK(h.state(b) == TaskState::pending);
    h.exit(a, 0);
    CHECK(h.state(b) == TaskState::running);
}

TEST_CASE("set_pool_workers starts waiting tasks at once when it grows a pool", "[unit][scheduler]") {
    Harness h(options(1));
    std::vector<int64_t> ids;
    for (int i = 0; i < 4; ++i) {
        ids.push_back(h.submit(cmd("t")));
    }
    CHECK(h.running().size() == 1);
    h.sched.set_pool_workers("default", 3);
    CHECK(h.running() == std::vector<int64_t>{ids[0], ids[1], ids[2]});
    CHECK(h.sched.pool_workers("default") == 3);
}

TEST_CASE("shrinking a pool stops no running task and starts none until it is below the new size",
          "[unit][scheduler]") {
    Harness h(options(3));
    std::vector<int64_t> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(h.submit(cmd("t")));
    }
    CHECK(h.running().size() == 3);
    h.sched.set_pool_workers("default", 1);
    CHECK(h.running().size() == 3);
    CHECK(h.spawner.signals.empty());
    h.exit(ids[0], 0);
    CHECK(h.running() == std::vector<int64_t>{ids[1], ids[2]});
    h.exit(ids[1], 0);
    CHECK(h.running() == std::vector<int64_t>{ids[2]});
    h.exit(ids[2], 0);
    CHECK(h.running() == std::vector<int64_t>{ids[3]});
}

TEST_CASE("a pool of zero workers holds its tasks until it is given workers", "[unit][scheduler]") {
    Harness h(options(1));
    h.sched.set_pool_workers("paused", 0);
    int64_t id = h.submit(cmd("t", {{"pool", "paused"}}));
    CHECK(h.state(id) == TaskState::pending);
    CHECK(h.spawner.processes.empty());
    h.sched.set_pool_workers("paused", 1);
    CHECK(h.state(id) == TaskState::running);
}

TEST_CASE("set_pool_workers on a pool not used yet gives it that size when it is created",
          "[unit][scheduler]") {
    Harness h(options(1));
    h.sched.set_pool_workers("wide", 4);
    CHECK(h.sched.pool_workers("wide") == 4);
    for (int i = 0; i < 5; ++i) {
        h.submit(cmd("t", {{"pool", "wide"}}));
    }
    CHECK(h.running().size() == 4);
}

TEST_CASE("pools() counts tasks waiting on dependencies apart from ready ones", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t a = h.submit(cmd("a"));
    h.submit(cmd("b"));
    h.submit(cmd("c", {{"after", {a}}}));
    const auto pools_now = h.sched.pools();
    const auto* def = find_pool(pools_now, "default");
    REQUIRE(def != nullptr);
    CHECK(def->running == 1);
    CHECK(def->pending == 1);
    CHECK(def->waiting == 1);
}
