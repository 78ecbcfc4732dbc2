// The scheduler, driven by the fakes of scheduler_harness.hpp: re-adoption at resume. A task journaled
// running with its pid and start time is adopted and ends as a task of this daemon would (status, retries,
// dependants, timeout at its original deadline, cancel); one that cannot be adopted is lost, saying why.

#include <mpctl/common/time.hpp>

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;
using Catch::Matchers::Contains;

namespace {

// A task as the journal keeps one that was running when its daemon died.
Task was_running(Harness& h, int64_t id, const json& spec, int pid, uint64_t pid_start = 123456) {
    Task t = h.journaled(id, TaskState::running, spec);
    t.pid = pid;
    t.pid_start = pid_start;
    t.attempts = 1;
    t.started_at_ms = mpctl::common::now_unix_ms() - 1000;
    return t;
}

}  // namespace

TEST_CASE("resume re-adopts a task journaled running, which stays running and ends with its exit status",
          "[unit][scheduler][adoption]") {
    Harness h;
    Task t = was_running(h, 5, cmd("long"), 4242, 777);
    int64_t started_at = *t.started_at_ms;
    h.sched.restore(std::move(t));
    h.sched.resume();
    REQUIRE(h.spawner.adoptions.size() == 1);
    CHECK(h.spawner.adoptions[0].pid == 4242);
    CHECK(h.spawner.adoptions[0].start_ticks == 777);
    CHECK(h.spawner.adoptions[0].pool == "default");
    CHECK(h.spawner.adoptions_done_calls == 1);
    CHECK(h.state(5) == TaskState::running);
    CHECK(h.pid(5) == 4242);
    CHECK(h.task(5).attempts == 1);
    CHECK(h.task(5).started_at_ms == started_at);
    CHECK(h.sched.running_count() == 1);
    CHECK(h.sched.running_ids() == std::set<int64_t>{5});
    CHECK(h.listener.changes.empty());  // nothing changed that the journal does not already say
    CHECK(h.spawner.processes.empty());

    h.exit(5, 3);
    Task& r = h.task(5);
    CHECK(r.state == TaskState::failed);
    CHECK(r.reason == FailReason::exit);
    CHECK(r.exit_code == 3);
    CHECK_FALSE(r.pid);
    CHECK(r.pid_start == 0);
    CHECK(h.listener.states_of(5) == std::vector<TaskState>{TaskState::failed});
    CHECK(h.sched.running_count() == 0);
}

TEST_CASE("an adopted task killed by a signal fails with reason signal, one that exits 0 succeeds",
          "[unit][scheduler][adoption]") {
    Harness h(options(2));
    h.sched.restore(was_running(h, 1, cmd("a"), 100));
    h.sched.restore(was_running(h, 2, cmd("b"), 200));
    h.sched.resume();
    REQUIRE(h.spawner.adoptions.size() == 2);
    h.kill(1, SIGKILL);
    h.exit(2, 0);
    CHECK(h.task(1).reason == FailReason::signal);
    CHECK(h.task(1).signal == SIGKILL);
    CHECK(h.state(2) == TaskState::succeeded);
    CHECK(h.task(2).exit_code == 0);
}

TEST_CASE("an adopted task holds its pool's slot until it ends", "[unit][scheduler][adoption]") {
    Harness h(options(1));
    h.sched.restore(was_running(h, 1, cmd("adopted"), 100));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("queued")));
    h.sched.resume();
    CHECK(h.running() == std::vector<int64_t>{1});
    CHECK(h.spawner.processes.empty());
    h.exit(1, 0);
    CHECK(h.running() == std::vector<int64_t>{2});
}

TEST_CASE("an adopted task's dependants start once it succeeds", "[unit][scheduler][adoption]") {
    Harness h(options(2));
    h.sched.restore(was_running(h, 1, cmd("first"), 100));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("then", {{"after", {1}}})));
    h.sched.resume();
    CHECK(h.state(2) == TaskState::pending);
    CHECK(h.spawner.processes.empty());
    h.exit(1, 0);
    CHECK(h.state(2) == TaskState::running);
}

TEST_CASE("an adopted task that fails is retried if it has retries left", "[unit][scheduler][adoption]") {
    Harness h;
    h.sched.restore(was_running(h, 1, cmd("flaky", {{"retries", 1}}), 100));
    h.sched.resume();
    h.exit(1, 1);
    CHECK(h.state(1) == TaskState::running);
    CHECK(h.task(1).attempts == 2);
    REQUIRE(h.spawner.processes.size() == 1);
    CHECK(h.pid(1) == h.spawner.processes[0].pid);
    h.exit(1, 0);
    CHECK(h.state(1) == TaskState::succeeded);
}

TEST_CASE("an adopted task times out at its original deadline", "[unit][scheduler][adoption]") {
    Harness h;
    // Started 2 s before the restart with a timeout of 5 s: 3 s are left.
    Task t = was_running(h, 1, cmd("slow", {{"timeout", 5}, {"kill_after", 2}}), 100);
    t.started_at_ms = mpctl::common::now_unix_ms() - 2000;
    h.sched.restore(std::move(t));
    h.sched.resume();
    REQUIRE(h.timers.started.size() == 1);
    CHECK(h.timers.started[0].count() > 2900);
    CHECK(h.timers.started[0].count() <= 3000);
    h.timers.advance(2800);
    CHECK(h.spawner.signals.empty());
    h.timers.advance(200);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{100, SIGTERM}});
    h.spawner.alive_groups.insert(100);
    h.timers.advance(2000);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{100, SIGTERM}, {100, SIGKILL}});
    h.kill(1, SIGKILL);
    CHECK(h.task(1).state == TaskState::failed);
    CHECK(h.task(1).reason == FailReason::timeout);
}

TEST_CASE("an adopted task its backend may still hold times out counting from when it began",
          "[unit][scheduler][adoption]") {
    Harness h;
    h.spawner.tells_began = true;
    // Submitted a minute before the restart with a timeout of 5 s, and not begun yet (pending in Slurm).
    Task t = was_running(h, 1, cmd("slow", {{"timeout", 5}}), 100);
    t.started_at_ms = mpctl::common::now_unix_ms() - 60000;
    h.sched.restore(std::move(t));
    h.sched.resume();
    CHECK(h.timers.started.empty());
    REQUIRE(h.spawner.began_callbacks.contains(100));
    int64_t began = mpctl::common::now_unix_ms() - 1000;  // a second ago
    h.spawner.began_callbacks[100](began);
    CHECK(h.task(1).started_at_ms == began);
    REQUIRE(h.timers.started.size() == 1);
    CHECK(h.timers.started[0].count() > 3900);
    CHECK(h.timers.started[0].count() <= 4000);
    h.timers.advance(4000);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{100, SIGTERM}});
}

TEST_CASE("an adopted task whose deadline passed while the daemon was down times out at once",
          "[unit][scheduler][adoption]") {
    Harness h;
    Task t = was_running(h, 1, cmd("slow", {{"timeout", 5}, {"kill_after", 2}}), 100);
    t.started_at_ms = mpctl::common::now_unix_ms() - 60000;
    h.sched.restore(std::move(t));
    h.sched.resume();
    REQUIRE(h.timers.started.size() == 1);
    CHECK(h.timers.started[0].count() == 0);
    h.timers.advance(0);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{100, SIGTERM}});
    h.kill(1, SIGTERM);
    CHECK(h.task(1).reason == FailReason::timeout);
}

TEST_CASE("an adopted task can be signalled and cancelled", "[unit][scheduler][adoption]") {
    Harness h;
    h.sched.restore(was_running(h, 1, cmd("long", {{"kill_after", 3}}), 100));
    h.sched.resume();
    CHECK(h.sched.signal(1, SIGUSR1));
    CHECK(h.sched.cancel(1, true) == CancelResult::terminating);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{100, SIGUSR1}, {100, SIGTERM}});
    h.kill(1, SIGTERM);
    CHECK(h.state(1) == TaskState::cancelled);
}

TEST_CASE("an adopted task whose end no source recorded is lost, and not retried",
          "[unit][scheduler][adoption]") {
    Harness h;
    h.sched.restore(was_running(h, 1, cmd("x", {{"retries", 3}}), 100));
    h.sched.resume();
    h.spawner.exit(100, unknown_exit());
    Task& t = h.task(1);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::lost);
    CHECK(t.attempts == 1);
    REQUIRE(t.error);
    CHECK_THAT(*t.error, Contains("without any record of its exit status"));
    CHECK(h.spawner.processes.empty());
}

TEST_CASE("tasks that cannot be re-adopted are lost, each saying why", "[unit][scheduler][adoption]") {
    Harness h(options(8));
    // A pipeline journaled by an older daemon: its first stage's pid only.
    h.sched.restore(was_running(h, 1, json{{"pipeline", {{"yes"}, {"head"}}}}, 100));
    // Journaled by an older daemon: no start time.
    h.sched.restore(was_running(h, 2, cmd("old"), 200, 0));
    // Its pid is another process now (the spawner says so).
    h.sched.restore(was_running(h, 3, cmd("reused"), 300));
    h.spawner.refuse_adoption[300] = "pid 300 is another process now";
    // A warm pool's task (the warm spawner refuses it).
    h.sched.restore(was_running(h, 4, cmd("warm", {{"pool", "w"}}), 400));
    h.spawner.refuse_adoption[400] =
        "it ran on a worker of warm pool w, which ended with the daemon's socket";
    // Still starting: no pid yet.
    Task starting = h.journaled(5, TaskState::running, cmd("starting"));
    starting.attempts = 1;
    h.sched.restore(std::move(starting));
    // In a cgroup of its own, and this daemon has no task cgroups.
    h.sched.restore(was_running(h, 6, cmd("contained", {{"cgroup", true}}), 600));
    h.sched.resume();

    std::map<int64_t, std::string> expect{{1, "stages' processes"}, {2, "start time"},
                                          {3, "another process"},   {4, "warm pool w"},
                                          {5, "being started"},     {6, "cgroup"}};
    for (const auto& [id, why] : expect) {
        INFO("task " << id);
        Task& t = h.task(id);
        CHECK(t.state == TaskState::failed);
        CHECK(t.reason == FailReason::lost);
        CHECK_FALSE(t.pid);
        REQUIRE(t.error);
        CHECK_THAT(*t.error, Contains("outcome is unknown") && Contains(why));
    }
    // Nothing was adopted.
    std::vector<int> asked;
    for (const auto& a : h.spawner.adoptions) {
        asked.push_back(a.pid);
    }
    CHECK(asked.empty());
    CHECK(h.sched.running_count() == 0);
    CHECK(h.spawner.adoptions_done_calls == 1);
}

TEST_CASE("a started task journals its process's start time with its pid", "[unit][scheduler][adoption]") {
    Harness h;
    int64_t id = h.submit(cmd("x"));
    int pid = h.pid(id);
    CHECK(h.task(id).pid_start == h.spawner.start_ticks(pid));
    REQUIRE_FALSE(h.listener.changes.empty());
    CHECK(h.listener.changes.back().pid_start == h.spawner.start_ticks(pid));
    h.exit(id, 0);
    CHECK(h.task(id).pid_start == 0);
}

namespace {

// A pipeline as the journal keeps one that was running: each stage's pid and start time, and the status of
// those that had ended.
Task pipeline_was_running(Harness& h, int64_t id, std::vector<Task::StageRun> stages) {
    json pipeline = json::array();
    for (size_t i = 0; i < stages.size(); ++i) {
        pipeline.push_back(json::array({"stage" + std::to_string(i)}));
    }
    Task t = was_running(h, id, json{{"pipeline", pipeline}}, stages.front().pid, stages.front().start);
    t.stages = std::move(stages);
    return t;
}

Task::StageRun live(int pid, uint64_t start) {
    return Task::StageRun{pid, false, std::nullopt, std::nullopt, start};
}

}  // namespace

TEST_CASE("resume re-adopts a pipeline stage by stage and weighs every stage's status, journaled or not",
          "[unit][scheduler][adoption]") {
    Harness h;
    // The first stage had ended (exit 0) before the crash; the others run on.
    h.sched.restore(pipeline_was_running(
        h, 7, {Task::StageRun{700, true, 0, std::nullopt, 0}, live(701, 7001), live(702, 7002)}));
    h.sched.resume();
    REQUIRE(h.spawner.adoptions.size() == 2);
    CHECK(h.spawner.adoptions[0].pid == 701);
    CHECK(h.spawner.adoptions[0].start_ticks == 7001);
    CHECK(h.spawner.adoptions[1].pid == 702);
    CHECK(h.spawner.adoptions[1].start_ticks == 7002);
    CHECK(h.state(7) == TaskState::running);
    CHECK(h.sched.readopted() == std::vector<int64_t>{7});

    h.spawner.exit(702, exited(0));
    CHECK(h.state(7) == TaskState::running);  // it ends with its last process
    REQUIRE(h.listener.progressed.size() == 1);
    CHECK(h.listener.progressed[0].stages[2].exited);
    h.spawner.exit(701, exited(4));
    Task& t = h.task(7);
    CHECK(t.state == TaskState::failed);  // the rightmost failing stage, as with pipefail
    CHECK(t.reason == FailReason::exit);
    CHECK(t.exit_code == 4);
    CHECK(h.sched.running_count() == 0);
}

TEST_CASE("a journaled stage that failed fails the re-adopted pipeline that then succeeds everywhere else",
          "[unit][scheduler][adoption]") {
    Harness h;
    h.sched.restore(
        pipeline_was_running(h, 8, {Task::StageRun{800, true, 9, std::nullopt, 0}, live(801, 8001)}));
    h.sched.resume();
    REQUIRE(h.spawner.adoptions.size() == 1);
    h.spawner.exit(801, exited(0));
    CHECK(h.task(8).state == TaskState::failed);
    CHECK(h.task(8).exit_code == 9);
}

TEST_CASE("a pipeline stage that cannot be re-adopted makes the pipeline lost once the others end",
          "[unit][scheduler][adoption]") {
    Harness h;
    h.spawner.refuse_adoption[901] = "pid 901 is another process now";
    h.sched.restore(pipeline_was_running(h, 9, {live(900, 9000), live(901, 9001)}));
    // Every stage refused: lost at once, saying why.
    h.spawner.refuse_adoption[1000] = "pid 1000 is gone without a record";
    h.spawner.refuse_adoption[1001] = "pid 1001 is gone without a record";
    h.sched.restore(pipeline_was_running(h, 10, {live(1000, 10000), live(1001, 10001)}));
    h.sched.resume();
    CHECK(h.state(9) == TaskState::running);  // its first stage was taken back
    REQUIRE(h.task(10).error);
    CHECK(h.task(10).reason == FailReason::lost);
    CHECK_THAT(*h.task(10).error, Contains("pid 1000 is gone without a record"));

    h.spawner.exit(900, exited(0));
    Task& t = h.task(9);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::lost);
    REQUIRE(t.error);
    CHECK_THAT(*t.error, Contains("without any record of its exit status"));
}

TEST_CASE("a running pipeline journals each stage's start time, and each stage's end before the last",
          "[unit][scheduler][adoption]") {
    Harness h;
    int64_t id = h.submit(json{{"pipeline", {{"a"}, {"b"}, {"c"}}}});
    auto pids = h.spawner.processes.front().pids;
    const Task& t = h.task(id);
    REQUIRE(t.stages.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
        CHECK(t.stages[i].start == h.spawner.start_ticks(pids[i]));
    }
    size_t changes = h.listener.changes.size();
    h.spawner.exit(pids[0], exited(0));
    h.spawner.exit(pids[1], exited(0));
    CHECK(h.listener.changes.size() == changes);  // nothing a client sees changed
    REQUIRE(h.listener.progressed.size() == 2);
    CHECK(h.listener.progressed[1].stages[0].exited);
    CHECK(h.listener.progressed[1].stages[1].exited);
    CHECK_FALSE(h.listener.progressed[1].stages[2].exited);
    h.spawner.exit(pids[2], exited(0));
    CHECK(h.state(id) == TaskState::succeeded);
    CHECK(h.listener.progressed.size() == 2);  // the last one is the task's end, a change
}
