#pragma once
// What the scheduler's unit tests (test_scheduler_*.cpp) drive it with: a FakeSpawner whose processes exit
// when the test says so, a FakeTimers with a manual clock, a listener that records every notification, and
// a Harness holding them with a real Scheduler. No processes, no real time.

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
#include <mpctl/daemon/tasks/status_view.hpp>
#include <mpctl/daemon/tasks/task_listener.hpp>
#include <mpctl/daemon/tasks/timers.hpp>
#include <mpctl/proto/task_spec.hpp>
#include <mpctl/proto/task_status.hpp>

#include "temp_dir.hpp"

namespace mpctl::test::scheduler {

using mpctl::daemon::ExitInfo;
using mpctl::daemon::FailReason;
using mpctl::daemon::Scheduler;
using mpctl::daemon::Spawner;
using mpctl::daemon::SpawnSpec;
using mpctl::daemon::Task;
using mpctl::daemon::TaskListener;
using mpctl::daemon::TaskState;
using mpctl::daemon::TimerId;
using mpctl::daemon::Timers;
using nlohmann::json;
using CancelResult = Scheduler::CancelResult;

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
        OnStarted on_started;  // while its start is deferred
        std::vector<bool> exited;
        [[nodiscard]] const std::vector<std::string>& argv() const { return spec.stages.front().argv; }
    };

    void spawn(SpawnSpec spec, OnStarted on_started, OnExit on_exit) override {
        auto pids = start(std::move(spec), std::move(on_exit));
        if (defer_starts) {
            // As the daemon's spawner does: the outcome arrives later, when the test says so.
            if (pids) {
                processes.back().on_started = std::move(on_started);
            } else {
                deferred_failures.emplace_back(std::move(on_started), pids.error());
            }
            return;
        }
        on_started(std::move(pids));
    }

    // Reports the oldest deferred failed spawn (defer_starts).
    void complete_failed_start() {
        REQUIRE_FALSE(deferred_failures.empty());
        auto [on_started, error] = std::move(deferred_failures.front());
        deferred_failures.erase(deferred_failures.begin());
        on_started(std::unexpected(error));
    }

    // Reports the deferred start of the process with group PID (defer_starts).
    void complete_start(int pid) {
        Process& p = process(pid);
        REQUIRE(p.on_started);
        auto on_started = std::move(p.on_started);
        p.on_started = nullptr;
        on_started(p.pids);
    }

    mpctl::common::Result<std::vector<int>> start(SpawnSpec spec, OnExit on_exit) {
        ++spawn_calls;
        for (size_t i = 0; i < spec.stages.size(); ++i) {
            auto failure = fail_for.find(spec.stages[i].argv.front());
            if (failure != fail_for.end()) {
                // As the real spawner reports it: a pipeline names the stage at fault.
                mpctl::common::Error e = failure->second;
                if (spec.stages.size() > 1) {
                    e.context = "stage " + std::to_string(i) + ": " + e.context;
                }
                failed_specs.push_back(std::move(spec));
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

    // A start time for each process it started, as the real spawner reads the clock before the clone.
    [[nodiscard]] uint64_t start_ticks(int pid) const override { return static_cast<uint64_t>(pid) * 10 + 7; }

    // Re-adoption: every process is adopted unless refuse_adoption names its pid (with the reason the real
    // spawner would give); exit() ends an adopted one too.
    struct Adoption {
        int pid = 0;
        uint64_t start_ticks = 0;
        std::string pool;
        OnExit on_exit;
        bool exited = false;
    };
    mpctl::common::Result<void> adopt(int pid, uint64_t start, const std::string& pool,
                                      OnExit on_exit) override {
        if (auto it = refuse_adoption.find(pid); it != refuse_adoption.end()) {
            return mpctl::common::plain_error(it->second);
        }
        adoptions.push_back(Adoption{pid, start, pool, std::move(on_exit), false});
        return {};
    }
    void adoptions_done() override { ++adoptions_done_calls; }

    // Pools whose tasks this fake backend holds behind a running dependency of another such pool.
    [[nodiscard]] bool holds(const std::string& pool, const std::string& dep_pool, int) const override {
        return holding_pools.contains(pool) && holding_pools.contains(dep_pool);
    }
    std::set<std::string> holding_pools;
    // They are another backend's, whose start is a submission (SpawnSpec::on_began tells when it began).
    [[nodiscard]] std::string backend(const std::string& pool) const override {
        return holding_pools.contains(pool) ? "fake-batch" : "local";
    }
    // A backend that tells when an adopted task began: its callbacks, by pid, for the test to run.
    bool tells_began = false;
    std::map<int, std::function<void(int64_t)>> began_callbacks;
    bool when_began(int pid, std::function<void(int64_t)> on_began) override {
        if (tells_began) {
            began_callbacks[pid] = std::move(on_began);
        }
        return tells_began;
    }

    bool group_alive(int pgid) override {
        group_alive_asked.push_back(pgid);
        return alive_groups.contains(pgid);
    }

    // Ends process PID (any stage's): runs its OnExit exactly once, as the real spawner does after reaping
    // it.
    void exit(int pid, ExitInfo info) {
        auto adopted = std::find_if(adoptions.begin(), adoptions.end(),
                                    [&](const Adoption& a) { return a.pid == pid && !a.exited; });
        if (adopted != adoptions.end()) {
            adopted->exited = true;
            adopted->on_exit(0, info);
            return;
        }
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
    std::map<std::string, mpctl::common::Error> fail_for;
    std::set<int> alive_groups;
    std::vector<int> group_alive_asked;
    int spawn_calls = 0;
    int next_pid = 1000;
    bool defer_starts = false;  // spawns report their outcome only at complete_start()
    std::vector<std::pair<OnStarted, mpctl::common::Error>> deferred_failures;
    std::map<int, std::string> refuse_adoption;  // pid -> why adopt() refuses it
    std::vector<Adoption> adoptions;             // in adoption order
    int adoptions_done_calls = 0;
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

class RecordingListener final : public TaskListener {
  public:
    void task_changed(const Task& task) override { changes.push_back(task); }
    void task_progressed(const Task& task) override { progressed.push_back(task); }
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
    std::vector<Task> progressed;  // what only the journal hears (a pipeline's stage that ended)
    std::vector<std::string> dropped_pools;
};

// -- harness --------------------------------------------------------------------------------------------

inline Scheduler::Options options(int default_workers = 1, std::map<std::string, int> pool_workers = {}) {
    Scheduler::Options o;
    o.default_workers = default_workers;
    o.pool_workers = std::move(pool_workers);
    o.daemon_env = {"PATH=/usr/bin:/bin", "HOME=/daemon"};
    o.default_cwd = "/daemon-home";
    return o;
}

// A spawn failure as the spawner reports it, for FakeSpawner::fail_for: the shell's exit code it stands
// for (127 not found, else 126) and its message.
inline mpctl::common::Error spawn_error(int exit_code, std::string message) {
    return {exit_code == 127 ? mpctl::common::Errc::not_found : mpctl::common::Errc::failed, 0,
            std::move(message)};
}

inline ExitInfo exited(int code) {
    return ExitInfo{code, std::nullopt, {}};
}
inline ExitInfo killed(int signo) {
    return ExitInfo{std::nullopt, signo, {}};
}
// An adopted process's end that no source recorded.
inline ExitInfo unknown_exit() {
    return ExitInfo{std::nullopt, std::nullopt, {}, true};
}

inline json cmd(const std::string& name) {
    return json{{"argv", {name}}};
}

inline json cmd(const std::string& name, json extra) {
    json j = cmd(name);
    for (auto& [k, v] : extra.items()) {
        j[k] = v;
    }
    return j;
}

struct Harness {
    explicit Harness(Scheduler::Options o = options())
        : outputs(dir.path()),
          view(outputs, o.default_cwd),
          sched(spawner, timers, outputs, listener, std::move(o)) {}

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

    mpctl::proto::TaskStatus status(int64_t id) { return view.status(task(id)); }

    // Builds a journaled task as the store would hand it back at start-up.
    Task journaled(int64_t id, TaskState state, const json& spec) {
        Task t;
        t.id = id;
        t.spec = mpctl::daemon::CompactSpec(mpctl::proto::parse_task_spec(spec), nullptr);
        t.state = state;
        t.submitted_at_ms = 500;
        return t;
    }

    mpctl::test::TempDir dir;
    FakeSpawner spawner;
    FakeTimers timers;
    mpctl::daemon::OutputLayout outputs;
    mpctl::daemon::StatusView view;
    RecordingListener listener;
    Scheduler sched;
};

inline const mpctl::daemon::PoolInfo* find_pool(const std::vector<mpctl::daemon::PoolInfo>& pools,
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

}  // namespace mpctl::test::scheduler
