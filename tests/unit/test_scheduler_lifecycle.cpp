// The scheduler, driven by the fakes of scheduler_harness.hpp: ids, the submission lifecycle (add, durable,
// schedule, discard) and a task's life from start to exit.

#include "scheduler_harness.hpp"

using namespace mpctl::test::scheduler;

TEST_CASE("task ids are positive and increasing", "[unit][scheduler]") {
    Harness h;
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b"));
    int64_t c = h.submit(cmd("c"));
    CHECK(a == 1);
    CHECK(b == 2);
    CHECK(c == 3);
    CHECK(h.sched.next_id() == 4);
}

TEST_CASE("set_next_id moves the counter forward but never backwards", "[unit][scheduler]") {
    Harness h;
    h.sched.set_next_id(100);
    CHECK(h.sched.next_id() == 100);
    CHECK(h.submit(cmd("a")) == 100);
    h.sched.set_next_id(50);
    CHECK(h.sched.next_id() == 101);
    CHECK(h.submit(cmd("b")) == 101);
    h.sched.set_next_id(101);
    CHECK(h.sched.next_id() == 102);
}

TEST_CASE("a task that is not durable yet does not run and is not reported", "[unit][scheduler]") {
    Harness h;
    Task& t = h.sched.add(mpctl::proto::parse_task_spec(cmd("a")), 1000);
    int64_t id = t.id;
    CHECK_FALSE(t.durable);
    h.sched.schedule(id);  // not committed: ignored
    CHECK(h.spawner.processes.empty());
    CHECK(h.state(id) == TaskState::pending);
    CHECK(h.listener.changes.empty());

    h.sched.make_durable(id);
    CHECK(h.task(id).durable);
    CHECK(h.spawner.processes.empty());  // durable alone does not schedule
    h.sched.schedule(id);
    CHECK(h.state(id) == TaskState::running);
    CHECK(h.listener.states_of(id) == std::vector<TaskState>{TaskState::running});
}

TEST_CASE("a discarded task is forgotten and its id is not reused", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.sched.add(mpctl::proto::parse_task_spec(cmd("a")), 1000).id;
    h.sched.discard(id);
    CHECK(h.sched.find(id) == nullptr);
    CHECK(h.sched.tasks().empty());
    CHECK(h.submit(cmd("b")) == id + 1);
    CHECK(h.listener.states_of(id).empty());
}

TEST_CASE("discard does not forget a durable task", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("a"));
    h.sched.discard(id);
    REQUIRE(h.sched.find(id) != nullptr);
    CHECK(h.state(id) == TaskState::running);
}

TEST_CASE("make_durable, schedule and discard of unknown ids do nothing", "[unit][scheduler]") {
    Harness h;
    h.sched.make_durable(42);
    h.sched.schedule(42);
    h.sched.discard(42);
    CHECK(h.sched.tasks().empty());
    CHECK(h.spawner.processes.empty());
}

TEST_CASE("scheduling a task twice runs it once", "[unit][scheduler]") {
    Harness h(options(2));
    int64_t id = h.submit(cmd("a"));
    h.sched.schedule(id);
    CHECK(h.spawner.processes.size() == 1);

    Harness q(options(1));
    int64_t blocker = q.submit(cmd("blocker"));
    int64_t queued = q.submit(cmd("queued"));
    q.sched.schedule(queued);  // already in the queue
    q.exit(blocker, 0);
    CHECK(q.state(queued) == TaskState::running);
    q.exit(queued, 0);
    CHECK(q.spawner.processes.size() == 2);
    CHECK(q.state(queued) == TaskState::succeeded);
}

TEST_CASE("the listener is never told about tasks that are not durable", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.sched.add(mpctl::proto::parse_task_spec(cmd("a")), 1000).id;
    CHECK(h.sched.cancel(id, false) == CancelResult::cancelled);
    CHECK(h.listener.changes.empty());

    int64_t other = h.sched.add(mpctl::proto::parse_task_spec(cmd("b")), 1000).id;
    h.sched.cancel_pending();
    h.sched.discard(other);
    CHECK(h.listener.changes.empty());
}

// -- a task's life -----------------------------------------------------------------------------------------

TEST_CASE("a task that exits 0 succeeds and the listener hears running then succeeded", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("true"));
    CHECK(h.state(id) == TaskState::running);
    CHECK(h.task(id).attempts == 1);
    CHECK(h.task(id).started_at_ms);
    CHECK(h.sched.running_count() == 1);
    CHECK(h.sched.unfinished_count() == 1);

    h.exit(id, 0);
    Task& t = h.task(id);
    CHECK(t.state == TaskState::succeeded);
    CHECK(t.reason == FailReason::none);
    CHECK(t.exit_code == 0);
    CHECK_FALSE(t.signal);
    CHECK_FALSE(t.pid);
    CHECK(t.finished_at_ms);
    CHECK(h.sched.running_count() == 0);
    CHECK(h.sched.unfinished_count() == 0);
    CHECK(h.listener.states_of(id) == std::vector<TaskState>{TaskState::running, TaskState::succeeded});
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 0);
}

TEST_CASE("a task that exits non-zero fails with reason exit and its code", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("false"));
    h.exit(id, 3);
    Task& t = h.task(id);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::exit);
    CHECK(t.exit_code == 3);
    CHECK(h.listener.states_of(id) == std::vector<TaskState>{TaskState::running, TaskState::failed});
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 3);
}

TEST_CASE("a task killed by a signal fails with reason signal", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("crash"));
    h.kill(id, SIGSEGV);
    Task& t = h.task(id);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::signal);
    CHECK(t.signal == SIGSEGV);
    CHECK_FALSE(t.exit_code);
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 128 + SIGSEGV);
}

TEST_CASE("the spawn spec carries argv, cwd, env, stdin and the task's output paths", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("make", {{"argv", {"make", "-j4"}},
                                       {"cwd", "/src"},
                                       {"env", {{"PATH", "/opt/bin"}, {"A", "x=y"}}},
                                       {"stdin", "in.txt"}}));
    REQUIRE(h.spawner.processes.size() == 1);
    const SpawnSpec& s = h.spawner.processes[0].spec;
    CHECK(s.stages.front().argv == std::vector<std::string>{"make", "-j4"});
    CHECK(s.cwd == "/src");
    REQUIRE(s.env);
    std::vector<std::string> env = s.env->entries();
    std::sort(env.begin(), env.end());
    CHECK(s.env->path() == "/opt/bin");
    CHECK(env == std::vector<std::string>{"A=x=y", "PATH=/opt/bin"});
    CHECK(s.stdin_path == std::optional<std::string>("/src/in.txt"));
    auto paths = h.outputs.paths(id);
    CHECK(s.stdout_path == paths.stdout_path);
    CHECK(s.stages.front().stderr_path == paths.stderr_path);
    CHECK(s.stdout_path != s.stages.front().stderr_path);
    // The shard directory exists before the spawn, so the spawner can create the files.
    CHECK(std::filesystem::is_directory(std::filesystem::path(s.stdout_path).parent_path()));
    CHECK(h.status(id).stdout_path == paths.stdout_path);
    CHECK(h.status(id).stderr_path == paths.stderr_path);
}

TEST_CASE("a spec without env and cwd runs with the daemon's environment and default cwd",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("env"));
    REQUIRE(h.spawner.processes.size() == 1);
    const SpawnSpec& s = h.spawner.processes[0].spec;
    REQUIRE(s.env);
    CHECK(s.env->entries() == std::vector<std::string>{"PATH=/usr/bin:/bin", "HOME=/daemon"});
    CHECK(s.cwd == "/daemon-home");
    CHECK_FALSE(s.stdin_path);
    CHECK(h.status(id).cwd == "/daemon-home");
}

TEST_CASE("a relative stdin given without cwd is opened in the default cwd", "[unit][scheduler]") {
    Harness h;
    (void)h.submit(cmd("cat", {{"argv", {"cat"}}, {"stdin", "data/in.txt"}}));
    REQUIRE(h.spawner.processes.size() == 1);
    CHECK(h.spawner.processes[0].spec.stdin_path == std::optional<std::string>("/daemon-home/data/in.txt"));
}

TEST_CASE("tasks with the same environment share one exec-ready block", "[unit][scheduler]") {
    Harness h(options(4));
    auto shared = std::make_shared<const mpctl::proto::Environment>(
        mpctl::proto::Environment{{"PATH", "/bin"}, {"K", "V"}});
    auto add = [&](const std::shared_ptr<const mpctl::proto::Environment>& env) {
        auto spec = mpctl::proto::parse_task_spec(cmd("x"));
        spec.env = env;
        Task& t = h.sched.add(std::move(spec), 1000);
        h.sched.make_durable(t.id);
        h.sched.schedule(t.id);
    };
    add(shared);
    add(shared);
    add(std::make_shared<const mpctl::proto::Environment>(mpctl::proto::Environment{{"K", "other"}}));
    REQUIRE(h.spawner.processes.size() == 3);
    CHECK(h.spawner.processes[0].spec.env == h.spawner.processes[1].spec.env);  // the same block
    CHECK(h.spawner.processes[0].spec.env->entries() == std::vector<std::string>{"K=V", "PATH=/bin"});
    CHECK(h.spawner.processes[0].spec.env->path() == "/bin");
    CHECK(h.spawner.processes[2].spec.env->entries() == std::vector<std::string>{"K=other"});
    CHECK(h.spawner.processes[2].spec.env->path() == "/bin:/usr/bin");  // execvp's default
}

TEST_CASE("an empty env is an empty environment, not the daemon's", "[unit][scheduler]") {
    Harness h;
    h.submit(cmd("env", {{"env", json::object()}}));
    REQUIRE(h.spawner.processes.size() == 1);
    REQUIRE(h.spawner.processes[0].spec.env);
    CHECK(h.spawner.processes[0].spec.env->entries().empty());
    CHECK(h.spawner.processes[0].spec.env->envp()[0] == nullptr);
}

TEST_CASE("a shell task runs /bin/sh -c with its string", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit({{"shell", "echo hi | wc -c"}});
    REQUIRE(h.spawner.processes.size() == 1);
    CHECK(h.spawner.processes[0].argv() == std::vector<std::string>{"/bin/sh", "-c", "echo hi | wc -c"});
    CHECK(h.status(id).shell == std::optional<std::string>("echo hi | wc -c"));
    CHECK_FALSE(h.status(id).argv);
}

TEST_CASE("the status of a running task shows its pid and attempts", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("sleep", {{"name", "nap"}, {"labels", {{"k", "v"}}}, {"priority", 4}}));
    auto s = h.status(id);
    CHECK(s.id == id);
    CHECK(s.name == std::optional<std::string>("nap"));
    CHECK(s.state == TaskState::running);
    CHECK(s.pid == h.pid(id));
    CHECK(s.attempts == 1);
    CHECK(s.priority == 4);
    CHECK(s.labels == std::map<std::string, std::string>{{"k", "v"}});
    CHECK(s.submitted_at_ms == 1000);
    CHECK(s.pool == "default");
    CHECK(mpctl::proto::mirror_exit_code(s) == 124);
}
