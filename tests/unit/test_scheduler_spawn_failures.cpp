// The scheduler, driven by the fakes of scheduler_harness.hpp: tasks that cannot start: reason spawn, exit
// codes 126 and 127.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE("a command that is not found fails with reason spawn and exit code 127", "[unit][scheduler]") {
    Harness h;
    h.spawner.fail_for["nosuch"] = spawn_error(127, "nosuch: No such file or directory");
    int64_t id = h.submit(cmd("nosuch"));
    Task& t = h.task(id);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::spawn);
    CHECK(t.exit_code == 127);
    CHECK(t.error == std::optional<std::string>("nosuch: No such file or directory"));
    CHECK_FALSE(t.pid);
    CHECK(t.finished_at_ms);
    CHECK(h.sched.running_count() == 0);
    CHECK(h.listener.changes.back().state == TaskState::failed);
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 127);
}

TEST_CASE("a command that cannot be executed fails with reason spawn and exit code 126",
          "[unit][scheduler]") {
    Harness h;
    h.spawner.fail_for["noexec"] = spawn_error(126, "noexec: Permission denied");
    int64_t id = h.submit(cmd("noexec"));
    CHECK(h.task(id).reason == FailReason::spawn);
    CHECK(h.task(id).exit_code == 126);
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 126);
}

TEST_CASE("a spawn failure frees the slot for the next task", "[unit][scheduler]") {
    Harness h(options(1));
    h.spawner.fail_for["bad"] = spawn_error(127, "bad");
    int64_t blocker = h.submit(cmd("blocker"));
    int64_t bad = h.submit(cmd("bad"));
    int64_t good = h.submit(cmd("good"));
    h.exit(blocker, 0);
    CHECK(h.state(bad) == TaskState::failed);
    CHECK(h.state(good) == TaskState::running);
    const auto pools_now = h.sched.pools();
    const auto* def = find_pool(pools_now, "default");
    REQUIRE(def != nullptr);
    CHECK(def->running == 1);
}

TEST_CASE("a spawn failure fails dependants with reason dependency", "[unit][scheduler]") {
    Harness h(options(1));
    h.spawner.fail_for["bad"] = spawn_error(127, "bad");
    int64_t blocker = h.submit(cmd("blocker"));
    int64_t bad = h.submit(cmd("bad"));
    int64_t dep = h.submit(cmd("dep", {{"after", {bad}}}));
    int64_t dep2 = h.submit(cmd("dep2", {{"after", {dep}}}));
    h.exit(blocker, 0);
    CHECK(h.state(bad) == TaskState::failed);
    CHECK(h.state(dep) == TaskState::failed);
    CHECK(h.task(dep).reason == FailReason::dependency);
    CHECK(h.state(dep2) == TaskState::failed);
    CHECK(h.task(dep2).reason == FailReason::dependency);
    CHECK(h.running().empty());
}

TEST_CASE("an output directory that cannot be created fails the task with reason spawn",
          "[unit][scheduler]") {
    Harness h;
    // A file where the output root directory should be.
    {
        std::FILE* f = std::fopen((h.dir / "output").c_str(), "w");
        REQUIRE(f != nullptr);
        std::fclose(f);
    }
    int64_t id = h.submit(cmd("true"));
    CHECK(h.state(id) == TaskState::failed);
    CHECK(h.task(id).reason == FailReason::spawn);
    CHECK(h.task(id).exit_code == 126);
    CHECK(h.spawner.spawn_calls == 0);
}
