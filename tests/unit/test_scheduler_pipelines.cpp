// The scheduler, driven by the fakes of scheduler_harness.hpp: pipelines: every stage at once, pipefail and
// the SIGPIPE rule, spawn failures naming the stage.

#include <mpctl/daemon/exec/pipefail.hpp>
#include <mpctl/daemon/tasks/pipeline_outcome.hpp>

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

namespace {

json pipe3() {
    return json{{"pipeline", {{"producer"}, {"filter", "-x"}, {"consumer"}}}};
}

}  // namespace

TEST_CASE("a pipeline spawns every stage at once, with its own stderr file per stage", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(pipe3());
    REQUIRE(h.spawner.processes.size() == 1);
    const auto& p = h.spawner.processes.front();
    REQUIRE(p.spec.stages.size() == 3);
    CHECK(p.spec.stages[1].argv == std::vector<std::string>{"filter", "-x"});
    CHECK(p.spec.stages[0].stderr_path != p.spec.stages[1].stderr_path);
    CHECK(p.spec.stages[1].stderr_path != p.spec.stages[2].stderr_path);
    CHECK(h.task(id).pid == p.pids.front());

    auto s = h.status(id);
    CHECK_FALSE(s.argv);
    REQUIRE(s.stages);
    REQUIRE(s.stages->size() == 3);
    for (size_t i = 0; i < 3; ++i) {
        CHECK((*s.stages)[i].state == "running");
        CHECK((*s.stages)[i].pid == p.pids[i]);
        CHECK((*s.stages)[i].stderr_path == p.spec.stages[i].stderr_path);
    }
    CHECK(s.stderr_path == p.spec.stages[2].stderr_path);
}

TEST_CASE("a pipeline ends with its last process, not its first", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(pipe3());
    auto pids = h.spawner.processes.front().pids;
    h.spawner.exit(pids[2], exited(0));
    h.spawner.exit(pids[0], exited(0));
    CHECK(h.state(id) == TaskState::running);
    auto s = h.status(id);
    CHECK((*s.stages)[0].state == "succeeded");
    CHECK((*s.stages)[1].state == "running");
    CHECK((*s.stages)[2].state == "succeeded");
    h.spawner.exit(pids[1], exited(0));
    CHECK(h.state(id) == TaskState::succeeded);
    CHECK(h.task(id).exit_code == 0);
}

TEST_CASE("pipefail: the rightmost failing stage decides the outcome", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(pipe3());
    auto pids = h.spawner.processes.front().pids;
    h.spawner.exit(pids[0], exited(3));
    h.spawner.exit(pids[1], exited(4));
    h.spawner.exit(pids[2], exited(0));
    Task& t = h.task(id);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::exit);
    CHECK(t.exit_code == 4);
    auto s = h.status(id);
    CHECK((*s.stages)[0].state == "failed");
    CHECK((*s.stages)[0].exit_code == 3);
    CHECK((*s.stages)[1].exit_code == 4);
    CHECK((*s.stages)[2].state == "succeeded");
    CHECK_FALSE((*s.stages)[2].pid);
}

TEST_CASE("SIGPIPE before the last stage is success, SIGPIPE of the last stage is not", "[unit][scheduler]") {
    Harness h(options(2));
    int64_t early_reader = h.submit(json{{"pipeline", {{"yes"}, {"head", "-1"}}}});
    auto a = h.spawner.processes.back().pids;
    h.spawner.exit(a[1], exited(0));
    h.spawner.exit(a[0], killed(SIGPIPE));
    CHECK(h.state(early_reader) == TaskState::succeeded);
    CHECK((*h.status(early_reader).stages)[0].state == "succeeded");
    CHECK((*h.status(early_reader).stages)[0].signal == SIGPIPE);

    int64_t last_piped = h.submit(json{{"pipeline", {{"yes"}, {"writer"}}}});
    auto b = h.spawner.processes.back().pids;
    h.spawner.exit(b[0], exited(0));
    h.spawner.exit(b[1], killed(SIGPIPE));
    CHECK(h.state(last_piped) == TaskState::failed);
    CHECK(h.task(last_piped).reason == FailReason::signal);
    CHECK(h.task(last_piped).signal == SIGPIPE);

    int64_t other_signal = h.submit(json{{"pipeline", {{"yes"}, {"head"}}}});
    auto c = h.spawner.processes.back().pids;
    h.spawner.exit(c[0], killed(SIGSEGV));
    h.spawner.exit(c[1], exited(0));
    CHECK(h.state(other_signal) == TaskState::failed);
    CHECK(h.task(other_signal).signal == SIGSEGV);
}

TEST_CASE("a stage that cannot be spawned fails the pipeline with reason spawn, naming the stage",
          "[unit][scheduler]") {
    Harness h;
    h.spawner.fail_for["missing"] = spawn_error(127, "exec missing: No such file or directory");
    int64_t id = h.submit(json{{"pipeline", {{"cat"}, {"missing"}, {"wc"}}}});
    Task& t = h.task(id);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::spawn);
    CHECK(t.exit_code == 127);
    REQUIRE(t.error);
    CHECK(*t.error == "stage 1: exec missing: No such file or directory");
    auto s = h.status(id);
    REQUIRE(s.stages);
    for (const auto& st : *s.stages) {
        CHECK(st.state == "failed");
        CHECK_FALSE(st.pid);
    }
}

TEST_CASE("a timed-out pipeline signals the group of its first stage", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(json{{"pipeline", {{"a"}, {"b"}}}, {"timeout", 1}});
    auto pids = h.spawner.processes.front().pids;
    h.timers.advance(1000);
    REQUIRE_FALSE(h.spawner.signals_to(pids[0]).empty());
    CHECK(h.spawner.signals_to(pids[0]).front().second == SIGTERM);
    CHECK(h.spawner.signals_to(pids[1]).empty());  // stage 1 is in stage 0's group
    h.spawner.exit(pids[0], killed(SIGTERM));
    h.spawner.exit(pids[1], killed(SIGTERM));
    CHECK(h.state(id) == TaskState::failed);
    CHECK(h.task(id).reason == FailReason::timeout);
}

TEST_CASE("a shell stage reporting SIGPIPE as exit 141 before the last stage is success",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(json{{"pipeline", {{"sh", "-c", "yes"}, {"head", "-1"}}}});
    auto pids = h.spawner.processes.back().pids;
    h.spawner.exit(pids[1], exited(0));
    h.spawner.exit(pids[0], exited(128 + SIGPIPE));
    CHECK(h.state(id) == TaskState::succeeded);
    CHECK((*h.status(id).stages)[0].state == "succeeded");
    CHECK((*h.status(id).stages)[0].exit_code == 141);

    // As the last stage, 141 is an exit code like any other.
    int64_t last = h.submit(json{{"pipeline", {{"true"}, {"sh", "-c", "exit 141"}}}});
    auto lp = h.spawner.processes.back().pids;
    h.spawner.exit(lp[0], exited(0));
    h.spawner.exit(lp[1], exited(141));
    CHECK(h.state(last) == TaskState::failed);
    CHECK(h.task(last).exit_code == 141);
}

TEST_CASE("a stage before the last that is no shell and exits 141 failed, as under bash's pipefail",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(json{{"pipeline", {{"python3", "-c", "import sys; sys.exit(141)"}, {"cat"}}}});
    auto pids = h.spawner.processes.back().pids;
    h.spawner.exit(pids[1], exited(0));
    h.spawner.exit(pids[0], exited(141));
    CHECK(h.state(id) == TaskState::failed);
    CHECK(h.task(id).exit_code == 141);
    CHECK((*h.status(id).stages)[0].state == "failed");
    // Killed by SIGPIPE itself, any program succeeded; a shell by its path too.
    int64_t killed_id = h.submit(json{{"pipeline", {{"yes"}, {"head", "-1"}}}});
    auto kp = h.spawner.processes.back().pids;
    h.spawner.exit(kp[1], exited(0));
    h.spawner.exit(kp[0], killed(SIGPIPE));
    CHECK(h.state(killed_id) == TaskState::succeeded);
    CHECK(mpctl::daemon::is_shell("/usr/bin/bash"));
    CHECK(mpctl::daemon::is_shell("sh"));
    CHECK_FALSE(mpctl::daemon::is_shell("python3"));
    CHECK_FALSE(mpctl::daemon::is_shell("shellcheck"));
}
