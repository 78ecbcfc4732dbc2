// The scheduler driven by fakes: a FakeSpawner whose processes exit when the test says so, a FakeTimers with
// a manual clock, and a listener that records every notification. No processes, no real time.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <signal.h>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/daemon/exec/output_files.hpp>
#include <mpctl/daemon/exec/spawner.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>
#include <mpctl/daemon/tasks/timers.hpp>
#include <mpctl/proto/task_spec.hpp>
#include <mpctl/proto/task_status.hpp>

#include "unit_temp_dir.hpp"

using mpctl::daemon::ExitInfo;
using mpctl::daemon::FailReason;
using mpctl::daemon::Scheduler;
using mpctl::daemon::SchedulerListener;
using mpctl::daemon::Spawner;
using mpctl::daemon::SpawnError;
using mpctl::daemon::SpawnSpec;
using mpctl::daemon::Task;
using mpctl::daemon::TaskState;
using mpctl::daemon::TimerId;
using mpctl::daemon::Timers;
using nlohmann::json;
using CancelResult = Scheduler::CancelResult;

namespace {

// -- fakes ----------------------------------------------------------------------------------------------

// Records every spawn and signal; a process "exits" when the test calls exit(). Spawns fail for argv[0]
// listed in fail_for.
class FakeSpawner final : public Spawner {
  public:
    // One spawn: a task's attempt, with a pid per stage (pid is the first, the group's).
    struct Process {
        int pid = 0;
        std::vector<int> pids;
        SpawnSpec spec;
        OnExit on_exit;
        std::vector<bool> exited;
        [[nodiscard]] const std::vector<std::string>& argv() const { return spec.stages.front().argv; }
    };

    std::expected<std::vector<int>, SpawnError> spawn(SpawnSpec spec, OnExit on_exit) override {
        ++spawn_calls;
        for (size_t i = 0; i < spec.stages.size(); ++i) {
            auto failure = fail_for.find(spec.stages[i].argv.front());
            if (failure != fail_for.end()) {
                failed_specs.push_back(std::move(spec));
                SpawnError e = failure->second;
                e.stage = i;
                return std::unexpected(e);
            }
        }
        Process p;
        for (size_t i = 0; i < spec.stages.size(); ++i) {
            p.pids.push_back(next_pid++);
        }
        p.pid = p.pids.front();
        p.spec = std::move(spec);
        p.on_exit = std::move(on_exit);
        p.exited.assign(p.pids.size(), false);
        std::vector<int> pids = p.pids;
        processes.push_back(std::move(p));
        return pids;
    }

    void signal_group(int pgid, int signo) override { signals.emplace_back(pgid, signo); }

    bool group_alive(int pgid) override {
        group_alive_asked.push_back(pgid);
        return alive_groups.contains(pgid);
    }

    // Ends process PID (any stage's): runs its OnExit exactly once, as the real spawner does after reaping
    // it.
    void exit(int pid, ExitInfo info) {
        Process& p = process(pid);
        size_t stage = static_cast<size_t>(std::find(p.pids.begin(), p.pids.end(), pid) - p.pids.begin());
        REQUIRE_FALSE(p.exited[stage]);
        p.exited[stage] = true;
        p.on_exit(stage, info);
    }

    Process& process(int pid) {
        auto it = std::find_if(processes.begin(), processes.end(), [&](const Process& p) {
            return std::find(p.pids.begin(), p.pids.end(), pid) != p.pids.end();
        });
        REQUIRE(it != processes.end());
        return *it;
    }

    [[nodiscard]] std::vector<std::pair<int, int>> signals_to(int pgid) const {
        std::vector<std::pair<int, int>> out;
        for (const auto& s : signals) {
            if (s.first == pgid) {
                out.push_back(s);
            }
        }
        return out;
    }

    std::vector<Process> processes;  // in spawn order
    std::vector<SpawnSpec> failed_specs;
    std::vector<std::pair<int, int>> signals;  // (pgid, signo) in order
    std::map<std::string, SpawnError> fail_for;
    std::set<int> alive_groups;
    std::vector<int> group_alive_asked;
    int spawn_calls = 0;
    int next_pid = 1000;
};

// A manual clock: advance() runs the callbacks that fall due, earliest first (ties in start order),
// including timers started by those callbacks.
class FakeTimers final : public Timers {
  public:
    TimerId start(std::chrono::milliseconds delay, std::function<void()> fn) override {
        TimerId id = next_++;
        timers_.emplace(id, Entry{now_ + delay.count(), std::move(fn)});
        started.push_back(delay);
        return id;
    }

    void cancel(TimerId id) override { timers_.erase(id); }

    void advance(int64_t ms) {
        int64_t target = now_ + ms;
        for (;;) {
            auto due = timers_.end();
            for (auto it = timers_.begin(); it != timers_.end(); ++it) {
                if (it->second.due <= target && (due == timers_.end() || it->second.due < due->second.due)) {
                    due = it;
                }
            }
            if (due == timers_.end()) {
                break;
            }
            now_ = due->second.due;
            std::function<void()> fn = std::move(due->second.fn);
            timers_.erase(due);
            fn();
        }
        now_ = target;
    }

    [[nodiscard]] size_t pending() const { return timers_.size(); }
    [[nodiscard]] int64_t now() const { return now_; }

    std::vector<std::chrono::milliseconds> started;

  private:
    struct Entry {
        int64_t due = 0;
        std::function<void()> fn;
    };
    TimerId next_ = 1;
    int64_t now_ = 0;
    std::map<TimerId, Entry> timers_;  // ordered by id, i.e. by start order
};

class RecordingListener final : public SchedulerListener {
  public:
    void task_changed(const Task& task) override { changes.push_back(task); }
    void transient_pool_dropped(const std::string& name) override { dropped_pools.push_back(name); }

    [[nodiscard]] std::vector<TaskState> states_of(int64_t id) const {
        std::vector<TaskState> out;
        for (const auto& t : changes) {
            if (t.id == id) {
                out.push_back(t.state);
            }
        }
        return out;
    }

    // Ids in the order they were reported running.
    [[nodiscard]] std::vector<int64_t> started() const {
        std::vector<int64_t> out;
        for (const auto& t : changes) {
            if (t.state == TaskState::running) {
                out.push_back(t.id);
            }
        }
        return out;
    }

    std::vector<Task> changes;
    std::vector<std::string> dropped_pools;
};

// -- harness --------------------------------------------------------------------------------------------

Scheduler::Options options(int default_workers = 1, std::map<std::string, int> pool_workers = {}) {
    Scheduler::Options o;
    o.default_workers = default_workers;
    o.pool_workers = std::move(pool_workers);
    o.daemon_env = {"PATH=/usr/bin:/bin", "HOME=/daemon"};
    o.default_cwd = "/daemon-home";
    return o;
}

ExitInfo exited(int code) {
    return ExitInfo{code, std::nullopt};
}
ExitInfo killed(int signo) {
    return ExitInfo{std::nullopt, signo};
}

json cmd(const std::string& name) {
    return json{{"argv", {name}}};
}

json cmd(const std::string& name, json extra) {
    json j = cmd(name);
    for (auto& [k, v] : extra.items()) {
        j[k] = v;
    }
    return j;
}

struct Harness {
    explicit Harness(Scheduler::Options o = options())
        : outputs(dir.path()), sched(spawner, timers, outputs, listener, std::move(o)) {}

    // What task.submit does: add, commit (make durable), schedule.
    int64_t submit(const json& spec) {
        Task& t = sched.add(mpctl::proto::parse_task_spec(spec), 1000);
        int64_t id = t.id;
        sched.make_durable(id);
        sched.schedule(id);
        return id;
    }

    Task& task(int64_t id) {
        Task* t = sched.find(id);
        REQUIRE(t != nullptr);
        return *t;
    }

    TaskState state(int64_t id) { return task(id).state; }

    int pid(int64_t id) {
        Task& t = task(id);
        REQUIRE(t.state == TaskState::running);
        REQUIRE(t.pid);
        return *t.pid;
    }

    void exit(int64_t id, int code) { spawner.exit(pid(id), exited(code)); }
    void kill(int64_t id, int signo) { spawner.exit(pid(id), killed(signo)); }

    [[nodiscard]] std::vector<int64_t> running() const {
        std::vector<int64_t> out;
        for (const auto& [id, t] : sched.tasks()) {
            if (t.state == TaskState::running) {
                out.push_back(id);
            }
        }
        return out;
    }

    int spawns_of(int64_t id) const {
        std::string out = outputs.paths(id).stdout_path;
        return static_cast<int>(std::count_if(spawner.processes.begin(), spawner.processes.end(),
                                              [&](const auto& p) { return p.spec.stdout_path == out; }));
    }

    mpctl::proto::TaskStatus status(int64_t id) { return sched.status(task(id)); }

    // Builds a journaled task as the store would hand it back at start-up.
    Task journaled(int64_t id, TaskState state, const json& spec) {
        Task t;
        t.id = id;
        t.spec = mpctl::proto::parse_task_spec(spec);
        t.state = state;
        t.submitted_at_ms = 500;
        return t;
    }

    mpctl::test::UnitTempDir dir;
    FakeSpawner spawner;
    FakeTimers timers;
    mpctl::daemon::OutputLayout outputs;
    RecordingListener listener;
    Scheduler sched;
};

const mpctl::daemon::PoolInfo* find_pool(const std::vector<mpctl::daemon::PoolInfo>& pools,
                                         const std::string& name) {
    for (const auto& p : pools) {
        if (p.name == name) {
            return &p;
        }
    }
    return nullptr;
}
// The pointer would dangle into a temporary: keep the list in a variable first.
const mpctl::daemon::PoolInfo* find_pool(std::vector<mpctl::daemon::PoolInfo>&& pools,
                                         const std::string& name) = delete;

}  // namespace

// -- ids and the submission lifecycle --------------------------------------------------------------------

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

// -- pools -------------------------------------------------------------------------------------------------

TEST_CASE("a pool runs at most its number of workers at once", "[unit][scheduler]") {
    Harness h(options(2));
    std::vector<int64_t> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(h.submit(cmd("t" + std::to_string(i))));
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
    h.exit(ids[2], 0);
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

// -- dependencies ------------------------------------------------------------------------------------------

TEST_CASE("a task runs only after all its dependencies succeeded", "[unit][scheduler]") {
    Harness h(options(4));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b"));
    int64_t c = h.submit(cmd("c", {{"after", {a, b}}}));
    CHECK(h.running() == std::vector<int64_t>{a, b});
    CHECK(h.state(c) == TaskState::pending);
    h.exit(a, 0);
    CHECK(h.state(c) == TaskState::pending);
    CHECK(h.spawns_of(c) == 0);
    h.exit(b, 0);
    CHECK(h.state(c) == TaskState::running);
    h.exit(c, 0);
    CHECK(h.state(c) == TaskState::succeeded);
}

TEST_CASE("a failed dependency fails its dependants with reason dependency", "[unit][scheduler]") {
    Harness h(options(4));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b"));
    int64_t c = h.submit(cmd("c", {{"after", {a, b}}}));
    h.exit(a, 2);
    Task& t = h.task(c);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::dependency);
    CHECK(t.finished_at_ms);
    REQUIRE(t.error);
    CHECK(t.error->find(std::to_string(a)) != std::string::npos);
    CHECK(h.spawns_of(c) == 0);
    CHECK(h.listener.states_of(c) == std::vector<TaskState>{TaskState::failed});
    CHECK(mpctl::proto::mirror_exit_code(h.status(c)) == 125);
    // The other dependency is not affected.
    CHECK(h.state(b) == TaskState::running);
    h.exit(b, 0);
    CHECK(h.state(c) == TaskState::failed);
    CHECK(h.spawns_of(c) == 0);
}

TEST_CASE("a cancelled dependency fails its dependants with reason dependency", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t blocker = h.submit(cmd("blocker"));
    int64_t a = h.submit(cmd("a"));
    int64_t c = h.submit(cmd("c", {{"after", {a}}}));
    CHECK(h.sched.cancel(a, false) == CancelResult::cancelled);
    CHECK(h.state(c) == TaskState::failed);
    CHECK(h.task(c).reason == FailReason::dependency);
    h.exit(blocker, 0);
    CHECK(h.running().empty());
    CHECK(h.spawns_of(c) == 0);
}

TEST_CASE("a dependency failure cascades through a chain of dependants", "[unit][scheduler]") {
    Harness h(options(4));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    int64_t c = h.submit(cmd("c", {{"after", {b}}}));
    int64_t d = h.submit(cmd("d", {{"after", {c}}}));
    int64_t side = h.submit(cmd("side", {{"after", {b}}}));
    h.kill(a, SIGKILL);
    for (int64_t id : {b, c, d, side}) {
        INFO("task " << id);
        CHECK(h.state(id) == TaskState::failed);
        CHECK(h.task(id).reason == FailReason::dependency);
        CHECK(h.listener.states_of(id) == std::vector<TaskState>{TaskState::failed});
        CHECK(h.spawns_of(id) == 0);
    }
    CHECK(h.sched.unfinished_count() == 0);
}

TEST_CASE("a successful chain runs one task after the other", "[unit][scheduler]") {
    Harness h(options(4));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    int64_t c = h.submit(cmd("c", {{"after", {b}}}));
    CHECK(h.running() == std::vector<int64_t>{a});
    h.exit(a, 0);
    CHECK(h.running() == std::vector<int64_t>{b});
    h.exit(b, 0);
    CHECK(h.running() == std::vector<int64_t>{c});
    h.exit(c, 0);
    CHECK(h.listener.started() == std::vector<int64_t>{a, b, c});
}

TEST_CASE("a dependency that already succeeded does not hold a task back", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t a = h.submit(cmd("a"));
    h.exit(a, 0);
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    CHECK(h.state(b) == TaskState::running);
}

TEST_CASE("a dependency that already failed or was cancelled fails a new task at once", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t a = h.submit(cmd("a"));
    h.exit(a, 1);
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    CHECK(h.state(b) == TaskState::failed);
    CHECK(h.task(b).reason == FailReason::dependency);
    CHECK(h.listener.states_of(b) == std::vector<TaskState>{TaskState::failed});

    int64_t blocker = h.submit(cmd("blocker"));
    int64_t x = h.submit(cmd("x"));
    REQUIRE(h.sched.cancel(x, false) == CancelResult::cancelled);
    int64_t y = h.submit(cmd("y", {{"after", {x}}}));
    CHECK(h.state(y) == TaskState::failed);
    CHECK(h.task(y).reason == FailReason::dependency);
    CHECK(h.state(blocker) == TaskState::running);
    CHECK(h.spawns_of(b) == 0);
    CHECK(h.spawns_of(y) == 0);
}

TEST_CASE("a dependency on an unknown task fails the task at once", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t b = h.submit(cmd("b", {{"after", {999}}}));
    CHECK(h.state(b) == TaskState::failed);
    CHECK(h.task(b).reason == FailReason::dependency);
    CHECK(h.spawner.processes.empty());
}

TEST_CASE("dependants keep waiting while a dependency is retried and run when it succeeds",
          "[unit][scheduler]") {
    Harness h(options(2));
    int64_t a = h.submit(cmd("a", {{"retries", 1}}));
    int64_t b = h.submit(cmd("b", {{"after", {a}}}));
    h.exit(a, 1);
    CHECK(h.state(a) == TaskState::running);  // the retry, with no delay
    CHECK(h.state(b) == TaskState::pending);
    h.exit(a, 0);
    CHECK(h.state(b) == TaskState::running);
}

TEST_CASE("a released dependant waits for a free slot in its own pool", "[unit][scheduler]") {
    Harness h(options(1, {{"small", 1}}));
    int64_t a = h.submit(cmd("a"));
    int64_t busy = h.submit(cmd("busy", {{"pool", "small"}}));
    int64_t b = h.submit(cmd("b", {{"pool", "small"}, {"after", {a}}}));
    h.exit(a, 0);
    CHECK(h.state(b) == TaskState::pending);
    h.exit(busy, 0);
    CHECK(h.state(b) == TaskState::running);
}

TEST_CASE("a task listing the same dependency twice runs once it succeeded", "[unit][scheduler]") {
    Harness h(options(2));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b", {{"after", {a, a}}}));
    h.exit(a, 0);
    CHECK(h.state(b) == TaskState::running);
}

// -- retries -----------------------------------------------------------------------------------------------

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
    h.spawner.fail_for["missing"] = SpawnError{127, "missing: No such file or directory"};
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

// -- timeouts ----------------------------------------------------------------------------------------------

TEST_CASE(
    "a task past its timeout gets SIGTERM, then SIGKILL after kill_after, and fails with reason timeout",
    "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("slow", {{"timeout", 10}, {"kill_after", 2}}));
    int pid = h.pid(id);
    h.timers.advance(9999);
    CHECK(h.spawner.signals.empty());
    h.timers.advance(1);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGTERM}});
    CHECK(h.state(id) == TaskState::running);
    h.timers.advance(1999);
    CHECK(h.spawner.signals.size() == 1);
    h.timers.advance(1);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGTERM}, {pid, SIGKILL}});
    h.kill(id, SIGKILL);
    Task& t = h.task(id);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::timeout);
    CHECK(t.signal == SIGKILL);
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 124);
    CHECK(h.timers.pending() == 0);
}

TEST_CASE("a task that exits on SIGTERM gets no SIGKILL once its group is gone", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("slow", {{"timeout", 1}, {"kill_after", 5}}));
    int pid = h.pid(id);
    h.timers.advance(1000);
    REQUIRE(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGTERM}});
    h.kill(id, SIGTERM);
    h.timers.advance(10000);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGTERM}});
    CHECK(h.state(id) == TaskState::failed);
    CHECK(h.task(id).reason == FailReason::timeout);
    CHECK(h.timers.pending() == 0);
}

TEST_CASE("the group still gets SIGKILL after kill_after when it outlives its leader", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("sh", {{"timeout", 1}, {"kill_after", 5}}));
    int pid = h.pid(id);
    h.spawner.alive_groups.insert(pid);  // a background child keeps the group alive
    h.timers.advance(1000);
    h.kill(id, SIGTERM);
    CHECK(h.state(id) == TaskState::failed);
    h.timers.advance(4999);
    CHECK(h.spawner.signals_to(pid).size() == 1);
    h.timers.advance(1);
    CHECK(h.spawner.signals_to(pid) == std::vector<std::pair<int, int>>{{pid, SIGTERM}, {pid, SIGKILL}});
}

TEST_CASE("kill_after 0 sends SIGKILL at the deadline without a SIGTERM", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("slow", {{"timeout", 3}, {"kill_after", 0}}));
    int pid = h.pid(id);
    h.timers.advance(3000);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pid, SIGKILL}});
    h.kill(id, SIGKILL);
    CHECK(h.task(id).reason == FailReason::timeout);
}

TEST_CASE("a timed out task that exits 0 after SIGTERM still fails with reason timeout",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("graceful", {{"timeout", 1}}));
    h.timers.advance(1000);
    h.exit(id, 0);
    CHECK(h.state(id) == TaskState::failed);
    CHECK(h.task(id).reason == FailReason::timeout);
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 124);
}

TEST_CASE("a task that finishes before its timeout is never signalled", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("quick", {{"timeout", 5}}));
    h.timers.advance(4999);
    h.exit(id, 0);
    CHECK(h.timers.pending() == 0);
    h.timers.advance(100000);
    CHECK(h.spawner.signals.empty());
    CHECK(h.state(id) == TaskState::succeeded);
}

TEST_CASE("a task without a timeout starts no timer", "[unit][scheduler]") {
    Harness h;
    h.submit(cmd("forever"));
    CHECK(h.timers.pending() == 0);
    h.timers.advance(365LL * 86400 * 1000);
    CHECK(h.spawner.signals.empty());
}

TEST_CASE("a timed out task with retries gets a fresh timeout for each attempt", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("slow", {{"timeout", 2}, {"kill_after", 1}, {"retries", 1}}));
    int first = h.pid(id);
    h.timers.advance(2000);
    h.kill(id, SIGTERM);
    REQUIRE(h.state(id) == TaskState::running);
    int second = h.pid(id);
    CHECK(second != first);
    h.timers.advance(1999);
    CHECK(h.spawner.signals_to(second).empty());
    h.timers.advance(1);
    CHECK(h.spawner.signals_to(second) == std::vector<std::pair<int, int>>{{second, SIGTERM}});
    h.kill(id, SIGTERM);
    CHECK(h.state(id) == TaskState::failed);
    CHECK(h.task(id).reason == FailReason::timeout);
    CHECK(h.task(id).attempts == 2);
}

// -- cancel and signal
// ---------------------------------------------------------------------------------------

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

// -- spawn failures
// ------------------------------------------------------------------------------------------

TEST_CASE("a command that is not found fails with reason spawn and exit code 127", "[unit][scheduler]") {
    Harness h;
    h.spawner.fail_for["nosuch"] = SpawnError{127, "nosuch: No such file or directory"};
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
    h.spawner.fail_for["noexec"] = SpawnError{126, "noexec: Permission denied"};
    int64_t id = h.submit(cmd("noexec"));
    CHECK(h.task(id).reason == FailReason::spawn);
    CHECK(h.task(id).exit_code == 126);
    CHECK(mpctl::proto::mirror_exit_code(h.status(id)) == 126);
}

TEST_CASE("a spawn failure frees the slot for the next task", "[unit][scheduler]") {
    Harness h(options(1));
    h.spawner.fail_for["bad"] = SpawnError{127, "bad"};
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
    h.spawner.fail_for["bad"] = SpawnError{127, "bad"};
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

// -- restore and resume
// --------------------------------------------------------------------------------------

TEST_CASE("resume turns tasks that were running into failed with reason lost", "[unit][scheduler]") {
    Harness h;
    Task t = h.journaled(5, TaskState::running, cmd("long"));
    t.pid = 4242;
    t.attempts = 1;
    t.started_at_ms = 600;
    h.sched.restore(std::move(t));
    CHECK(h.listener.changes.empty());
    h.sched.resume();
    Task& r = h.task(5);
    CHECK(r.state == TaskState::failed);
    CHECK(r.reason == FailReason::lost);
    CHECK_FALSE(r.pid);
    CHECK(r.finished_at_ms);
    CHECK(r.error);
    CHECK(r.attempts == 1);
    CHECK(h.spawner.processes.empty());
    CHECK(h.spawner.signals.empty());
    CHECK(h.listener.states_of(5) == std::vector<TaskState>{TaskState::failed});
    CHECK(mpctl::proto::mirror_exit_code(h.status(5)) == 125);
    CHECK(h.sched.running_count() == 0);
}

TEST_CASE("resume queues restored pending tasks by priority, then id", "[unit][scheduler]") {
    Harness h(options(1));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("c")));
    h.sched.restore(h.journaled(1, TaskState::pending, cmd("a")));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("b", {{"priority", 1}})));
    CHECK(h.spawner.processes.empty());  // nothing runs before resume
    h.sched.resume();
    CHECK(h.running() == std::vector<int64_t>{2});
    h.exit(2, 0);
    CHECK(h.running() == std::vector<int64_t>{1});
    h.exit(1, 0);
    CHECK(h.running() == std::vector<int64_t>{3});
}

TEST_CASE("restore moves the id counter past every restored id", "[unit][scheduler]") {
    Harness h;
    h.sched.restore(h.journaled(41, TaskState::succeeded, cmd("old")));
    h.sched.restore(h.journaled(7, TaskState::failed, cmd("older")));
    CHECK(h.sched.next_id() == 42);
    h.sched.resume();
    CHECK(h.submit(cmd("new")) == 42);
}

TEST_CASE("restored tasks are durable and visible", "[unit][scheduler]") {
    Harness h;
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("p")));
    CHECK(h.task(3).durable);
}

TEST_CASE("restored finished tasks keep their outcome, drop their env and are not reported again",
          "[unit][scheduler]") {
    Harness h;
    Task done = h.journaled(1, TaskState::failed, cmd("x", {{"env", {{"SECRET", "s"}}}}));
    done.reason = FailReason::exit;
    done.exit_code = 9;
    done.finished_at_ms = 900;
    REQUIRE(done.spec.env);
    h.sched.restore(std::move(done));
    h.sched.resume();
    Task& t = h.task(1);
    CHECK(t.state == TaskState::failed);
    CHECK(t.reason == FailReason::exit);
    CHECK(t.exit_code == 9);
    CHECK(t.finished_at_ms == 900);
    CHECK_FALSE(t.spec.env);
    CHECK(h.listener.changes.empty());
    CHECK(h.spawner.processes.empty());
}

TEST_CASE("resume resolves dependencies among restored tasks", "[unit][scheduler]") {
    Harness h(options(4));
    h.sched.restore(h.journaled(1, TaskState::succeeded, cmd("done")));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("after-done", {{"after", {1}}})));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("first")));
    h.sched.restore(h.journaled(4, TaskState::pending, cmd("after-first", {{"after", {3}}})));
    h.sched.resume();
    CHECK(h.running() == std::vector<int64_t>{2, 3});
    CHECK(h.state(4) == TaskState::pending);
    h.exit(3, 0);
    CHECK(h.state(4) == TaskState::running);
}

TEST_CASE("resume fails the dependants of a task that was lost", "[unit][scheduler]") {
    Harness h(options(4));
    Task lost = h.journaled(1, TaskState::running, cmd("lost"));
    lost.pid = 100;
    h.sched.restore(std::move(lost));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("child", {{"after", {1}}})));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("grandchild", {{"after", {2}}})));
    h.sched.resume();
    CHECK(h.task(1).reason == FailReason::lost);
    CHECK(h.state(2) == TaskState::failed);
    CHECK(h.task(2).reason == FailReason::dependency);
    CHECK(h.state(3) == TaskState::failed);
    CHECK(h.task(3).reason == FailReason::dependency);
    CHECK(h.spawner.processes.empty());
    CHECK(h.listener.states_of(2) == std::vector<TaskState>{TaskState::failed});
    CHECK(h.listener.states_of(3) == std::vector<TaskState>{TaskState::failed});
}

TEST_CASE("resume fails restored pending tasks whose dependency had failed or is missing",
          "[unit][scheduler]") {
    Harness h(options(4));
    Task failed = h.journaled(1, TaskState::failed, cmd("failed"));
    failed.reason = FailReason::exit;
    h.sched.restore(std::move(failed));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("child", {{"after", {1}}})));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("orphan", {{"after", {99}}})));
    h.sched.resume();
    CHECK(h.task(2).reason == FailReason::dependency);
    CHECK(h.task(3).reason == FailReason::dependency);
    CHECK(h.spawner.processes.empty());
}

TEST_CASE("restored pending tasks in named pools run in those pools", "[unit][scheduler]") {
    Harness h(options(1, {{"gpu", 2}}));
    h.sched.restore(h.journaled(1, TaskState::pending, cmd("a", {{"pool", "gpu"}})));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("b", {{"pool", "gpu"}})));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("c")));
    h.sched.resume();
    CHECK(h.running() == std::vector<int64_t>{1, 2, 3});
}

// -- shutdown
// ------------------------------------------------------------------------------------------------

TEST_CASE("after stop_starting no task starts, even when a slot frees up", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t running = h.submit(cmd("running"));
    int64_t queued = h.submit(cmd("queued"));
    h.sched.stop_starting();
    CHECK(h.sched.starting_stopped());
    h.exit(running, 0);
    CHECK(h.state(queued) == TaskState::pending);
    int64_t late = h.submit(cmd("late"));
    CHECK(h.state(late) == TaskState::pending);
    h.sched.set_pool_workers("default", 5);
    CHECK(h.spawner.processes.size() == 1);
}

TEST_CASE("after stop_starting a failing task with retries stays pending for the next start",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"retries", 2}, {"retry_delay", 1}}));
    h.sched.stop_starting();
    h.exit(id, 1);
    CHECK(h.state(id) == TaskState::pending);
    CHECK(h.listener.changes.back().state == TaskState::pending);
    h.timers.advance(100000);
    CHECK(h.spawns_of(id) == 1);
}

TEST_CASE("terminate_running sends SIGTERM to every running task and they end cancelled",
          "[unit][scheduler]") {
    Harness h(options(2));
    int64_t a = h.submit(cmd("a"));
    int64_t b = h.submit(cmd("b"));
    int64_t queued = h.submit(cmd("queued"));
    h.sched.stop_starting();
    h.sched.terminate_running(3.0);
    int pa = h.pid(a);
    int pb = h.pid(b);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pa, SIGTERM}, {pb, SIGTERM}});
    h.kill(a, SIGTERM);
    h.timers.advance(2999);
    CHECK(h.spawner.signals.size() == 2);
    h.timers.advance(1);
    CHECK(h.spawner.signals_to(pb) == std::vector<std::pair<int, int>>{{pb, SIGTERM}, {pb, SIGKILL}});
    h.kill(b, SIGKILL);
    CHECK(h.state(a) == TaskState::cancelled);
    CHECK(h.state(b) == TaskState::cancelled);
    CHECK(h.state(queued) == TaskState::pending);  // stays queued for the next start
    CHECK(h.spawns_of(queued) == 0);
}

TEST_CASE("terminate_running with kill_after 0 sends SIGKILL at once", "[unit][scheduler]") {
    Harness h;
    int64_t a = h.submit(cmd("a", {{"kill_after", 30}}));
    int pa = h.pid(a);
    h.sched.stop_starting();
    h.sched.terminate_running(0.0);
    CHECK(h.spawner.signals == std::vector<std::pair<int, int>>{{pa, SIGKILL}});
}

TEST_CASE("terminate_running without a kill_after uses each task's own", "[unit][scheduler]") {
    Harness h(options(2));
    int64_t a = h.submit(cmd("a", {{"kill_after", 1}}));
    int64_t b = h.submit(cmd("b", {{"kill_after", 4}}));
    int pa = h.pid(a);
    int pb = h.pid(b);
    h.sched.stop_starting();
    h.sched.terminate_running(std::nullopt);
    h.timers.advance(1000);
    CHECK(h.spawner.signals_to(pa).size() == 2);
    CHECK(h.spawner.signals_to(pb).size() == 1);
    h.timers.advance(3000);
    CHECK(h.spawner.signals_to(pb).size() == 2);
}

TEST_CASE("a task with retries terminated at shutdown ends cancelled, not pending", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"retries", 5}}));
    h.sched.stop_starting();
    h.sched.terminate_running(1.0);
    h.kill(id, SIGTERM);
    CHECK(h.state(id) == TaskState::cancelled);
}

TEST_CASE("terminate_running during a timeout's grace period ends the task cancelled", "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("slow", {{"timeout", 1}, {"kill_after", 30}, {"retries", 1}}));
    h.timers.advance(1000);  // timed out, in its grace period
    h.sched.stop_starting();
    h.sched.terminate_running(1.0);
    h.kill(id, SIGTERM);
    CHECK(h.state(id) == TaskState::cancelled);
}

TEST_CASE("cancel_pending cancels queued and retrying tasks but leaves running ones", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t running = h.submit(cmd("running"));
    int64_t queued = h.submit(cmd("queued"));
    int64_t waiting = h.submit(cmd("waiting", {{"after", {running}}}));
    Harness r;  // a task in its retry delay
    int64_t retrying = r.submit(cmd("flaky", {{"retries", 1}, {"retry_delay", 5}}));
    r.exit(retrying, 1);
    REQUIRE(r.state(retrying) == TaskState::pending);

    h.sched.stop_starting();
    h.sched.cancel_pending();
    CHECK(h.state(running) == TaskState::running);
    CHECK(h.state(queued) == TaskState::cancelled);
    CHECK(h.state(waiting) == TaskState::cancelled);
    CHECK(h.listener.states_of(queued) == std::vector<TaskState>{TaskState::cancelled});
    h.exit(running, 0);
    CHECK(h.state(running) == TaskState::succeeded);
    CHECK(h.spawns_of(queued) == 0);

    r.sched.stop_starting();
    r.sched.cancel_pending();
    CHECK(r.state(retrying) == TaskState::cancelled);
    r.timers.advance(10000);
    CHECK(r.spawns_of(retrying) == 1);
}

TEST_CASE("cancel_pending cancels a pending task that waits on another pending task", "[unit][scheduler]") {
    Harness h(options(1));
    int64_t running = h.submit(cmd("running"));
    int64_t first = h.submit(cmd("first"));
    int64_t second = h.submit(cmd("second", {{"after", {first}}}));
    h.sched.stop_starting();
    h.sched.cancel_pending();
    CHECK(h.state(running) == TaskState::running);
    CHECK(h.state(first) == TaskState::cancelled);
    CHECK(h.state(second) == TaskState::cancelled);
}

// -- the environment of finished tasks
// -----------------------------------------------------------------------

TEST_CASE("a task keeps its env while it runs and between attempts and drops it when it finishes",
          "[unit][scheduler]") {
    Harness h;
    int64_t id = h.submit(cmd("flaky", {{"env", {{"K", "V"}}}, {"retries", 1}, {"retry_delay", 1}}));
    CHECK(h.task(id).spec.env);
    h.exit(id, 1);
    CHECK(h.task(id).spec.env);  // needed for the retry
    h.timers.advance(1000);
    REQUIRE(h.spawner.processes.size() == 2);
    REQUIRE(h.spawner.processes[1].spec.env);
    CHECK(h.spawner.processes[1].spec.env->entries() == std::vector<std::string>{"K=V"});
    h.exit(id, 0);
    CHECK_FALSE(h.task(id).spec.env);
}

TEST_CASE("every way of finishing drops the env", "[unit][scheduler]") {
    Harness h(options(1));
    h.spawner.fail_for["bad"] = SpawnError{127, "bad"};
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
        CHECK_FALSE(h.task(id).spec.env);
    }

    Harness r;
    Task lost = r.journaled(1, TaskState::running, cmd("lost", {{"env", env}}));
    REQUIRE(lost.spec.env);
    r.sched.restore(std::move(lost));
    r.sched.resume();
    CHECK_FALSE(r.task(1).spec.env);
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

// -- pipelines -------------------------------------------------------------------------------------------

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

TEST_CASE("SIGPIPE before the last stage is success; SIGPIPE of the last stage is not", "[unit][scheduler]") {
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
    h.spawner.fail_for["missing"] = SpawnError{127, "exec missing: No such file or directory", 0};
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

TEST_CASE(
    "when the owner of a transient pool is gone its pending tasks are cancelled and it is dropped "
    "after the running ones",
    "[unit][scheduler]") {
    Harness h(options(4));
    h.sched.set_pool_workers("map-1", 1, true);
    int64_t running = h.submit(cmd("a", {{"pool", "map-1"}}));
    int64_t queued = h.submit(cmd("b", {{"pool", "map-1"}}));
    int64_t waiting = h.submit(cmd("c", {{"pool", "map-1"}, {"after", {queued}}}));
    int64_t elsewhere = h.submit(cmd("d"));
    REQUIRE(h.state(running) == TaskState::running);
    REQUIRE(h.state(queued) == TaskState::pending);

    h.sched.release_transient_pool("map-1");
    CHECK(h.state(running) == TaskState::running);  // what runs finishes, as after a killed xargs
    CHECK(h.state(queued) == TaskState::cancelled);
    CHECK_THAT(h.task(queued).error.value_or(""), Catch::Matchers::Contains("owned pool map-1 closed"));
    CHECK(h.state(waiting) != TaskState::pending);
    CHECK(h.task(waiting).finished());
    CHECK(h.state(elsewhere) == TaskState::running);  // other pools are not touched
    auto pools = h.sched.pools();
    CHECK(find_pool(pools, "map-1") != nullptr);

    h.exit(running, 0);
    CHECK(h.state(running) == TaskState::succeeded);
    CHECK(h.spawner.spawn_calls == 2);  // a and d: nothing more started in map-1
    pools = h.sched.pools();
    CHECK(find_pool(pools, "map-1") == nullptr);
    CHECK(h.listener.dropped_pools == std::vector<std::string>{"map-1"});  // its journal row goes too
}

TEST_CASE("a daemon that stops cancels the pending tasks of transient pools, and only theirs",
          "[unit][scheduler]") {
    Harness h(options(1));
    h.sched.set_pool_workers("map-2", 1, true);
    int64_t running = h.submit(cmd("a", {{"pool", "map-2"}}));
    int64_t queued = h.submit(cmd("b", {{"pool", "map-2"}}));
    int64_t busy = h.submit(cmd("c"));
    int64_t kept = h.submit(cmd("d"));
    h.sched.cancel_transient_pending();
    h.sched.stop_starting();
    CHECK(h.state(running) == TaskState::running);
    CHECK(h.state(queued) == TaskState::cancelled);
    CHECK_THAT(h.task(queued).error.value_or(""), Catch::Matchers::Contains("the daemon stopped"));
    CHECK(h.state(busy) == TaskState::running);
    CHECK(h.state(kept) == TaskState::pending);  // an ordinary pool's queue waits for the next start
    h.sched.release_transient_pool("map-2");     // the connections close as the daemon goes
    CHECK(h.state(running) == TaskState::running);
}

TEST_CASE("a task committed after its transient pool's owner is gone is cancelled, not run",
          "[unit][scheduler]") {
    Harness h(options(4));
    h.sched.set_pool_workers("map-3", 2, true);
    // A submit whose commit is still in flight when the connection closes.
    Task& late = h.sched.add(mpctl::proto::parse_task_spec(cmd("a", {{"pool", "map-3"}})), 1000);
    int64_t id = late.id;
    h.sched.release_transient_pool("map-3");
    h.sched.make_durable(id);
    h.sched.schedule(id);
    CHECK(h.state(id) == TaskState::cancelled);
    CHECK(h.spawner.spawn_calls == 0);
    auto pools = h.sched.pools();
    CHECK(find_pool(pools, "map-3") == nullptr);
}

TEST_CASE("resume cancels the queue of a transient pool left by a dead daemon and forgets the pool",
          "[unit][scheduler]") {
    Harness h(options(4));
    Task running = h.journaled(1, TaskState::running, cmd("a", {{"pool", "map-7"}}));
    running.pid = 4242;
    h.sched.restore(std::move(running));
    h.sched.restore(h.journaled(2, TaskState::pending, cmd("b", {{"pool", "map-7"}})));
    h.sched.restore(h.journaled(3, TaskState::pending, cmd("c", {{"pool", "ordinary"}})));
    h.sched.orphan_restored_pool("map-7");
    h.sched.resume();
    CHECK(h.state(1) == TaskState::failed);  // lost, as everywhere
    CHECK(h.state(2) == TaskState::cancelled);
    CHECK_THAT(h.task(2).error.value_or(""), Catch::Matchers::Contains("the daemon restarted"));
    CHECK(h.running() == std::vector<int64_t>{3});  // other pools resume
    auto pools = h.sched.pools();
    CHECK(find_pool(pools, "map-7") == nullptr);
    CHECK(h.listener.dropped_pools == std::vector<std::string>{"map-7"});
}
