// Scheduler: one attempt of a task, from its start to its exit: spawning its processes, timeouts, forced
// stops, signals, and retrying what failed.

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <signal.h>

#include <mpctl/common/signals.hpp>
#include <mpctl/common/time.hpp>
#include <mpctl/daemon/tasks/output_limits.hpp>
#include <mpctl/daemon/tasks/pipeline_outcome.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>

namespace mpctl::daemon {

namespace {

std::chrono::milliseconds to_ms(double seconds) {
    return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0 + 0.5));
}

std::string describe_failure(FailReason reason, const Task& t) {
    switch (reason) {
        case FailReason::exit:
            return "exit code " + std::to_string(t.exit_code.value_or(-1));
        case FailReason::signal:
            return "killed by " + common::signal_name(t.signal.value_or(0));
        case FailReason::timeout:
            return "timed out after " + common::format_duration_seconds(t.spec.timeout_s().value_or(0));
        default:
            return std::string(proto::to_string(reason));
    }
}

}  // namespace

SpawnSpec Scheduler::spawn_spec(const Task& t) {
    SpawnSpec s;
    OutputPaths paths = outputs_.paths(t.id);
    auto argvs = t.spec.stage_argvs();
    for (size_t i = 0; i < argvs.size(); ++i) {
        SpawnStage stage;
        stage.argv = std::move(argvs[i]);
        stage.stderr_path = argvs.size() == 1 ? paths.stderr_path : outputs_.stage_stderr_path(t.id, i);
        s.stages.push_back(std::move(stage));
    }
    s.cwd = t.spec.cwd().empty() ? options_.default_cwd : t.spec.cwd();
    s.env = env_blocks_.get(t.spec.env());
    s.stdin_path = t.spec.stdin_path();
    if (s.stdin_path && !s.stdin_path->starts_with('/')) {
        // Given without cwd (the spec resolves it against cwd when there is one): the task's directory.
        s.stdin_path = s.cwd + (s.cwd.ends_with('/') ? "" : "/") + *s.stdin_path;
    }
    s.stdout_path = std::move(paths.stdout_path);
    s.pool = t.spec.pool();
    s.task = t.id;
    s.attempt = t.attempts;
    s.name = t.spec.name().value_or("");
    s.cpus = t.spec.cpus();
    s.mem = t.spec.mem();
    s.gpus = t.spec.gpus();
    s.array_throttle = t.spec.array_throttle();
    if (auto timeout = t.spec.timeout_s()) {
        s.timeout_ms = static_cast<int64_t>(*timeout * 1000);
    }
    if (t.unmet_deps > 0) {
        // Started before its dependencies succeeded: its backend holds it behind those still running.
        for (int64_t dep_id : t.spec.after()) {
            if (const Task* dep = find(dep_id);
                dep != nullptr && dep->state == TaskState::running && dep->pid) {
                s.after.push_back(*dep->pid);
            }
        }
    }
    s.nice = t.spec.nice();
    s.umask = t.spec.umask();
    for (const auto& [name, value] : t.spec.rlimits()) {
        s.rlimits.emplace_back(proto::rlimit_resource(name), value);
    }
    return s;
}

common::Result<SpawnSpec> Scheduler::prepare_spawn(Task& t) {
    // The daemon's own reasons a task cannot start; a pipeline blames its first stage for them, as the
    // spawner names the stage at fault for its own.
    auto cannot_start = [&t](std::string why) {
        return common::plain_error(t.spec.pipeline().empty() ? std::move(why) : "stage 0: " + why);
    };
    SpawnSpec spec = spawn_spec(t);
    if (t.spec.stdin_passed() && !t.passed_stdin) {
        return cannot_start(
            "stdin: the descriptor the client passed is gone (the daemon restarted since the submit)");
    }
    auto procs = cgroup_for(t);
    if (!procs) {
        return cannot_start("cgroup: " + procs.error().message());
    }
    auto files = outputs_.open(t.id, spec.stages.size(), t.attempts);
    if (!files) {
        return cannot_start("output: " + files.error().message());
    }
    spec.stdout_fd = std::move(files->stdout_fd);
    spec.cgroup_procs_fd = std::move(*procs);
    for (size_t i = 0; i < spec.stages.size(); ++i) {
        spec.stages[i].stderr_fd = std::move(files->stderr_fds[i]);
    }
    if (t.passed_stdin) {
        // Every attempt reads from the same descriptor; it is duplicated so that each spawn owns one.
        spec.stdin_fd.reset(::fcntl(t.passed_stdin->get(), F_DUPFD_CLOEXEC, 3));
        if (!spec.stdin_fd) {
            return cannot_start(std::string("stdin: ") + std::strerror(errno));
        }
    } else {
        spec.input = t.spec.input();  // a copy per attempt: each reads it from the start
    }
    return spec;
}

void Scheduler::start(Task& t, Pool& pool) {
    ++t.attempts;
    t.state = TaskState::running;
    t.reason = FailReason::none;
    t.finished_at_ms.reset();
    t.exit_code.reset();
    t.signal.reset();
    t.error.reset();
    t.truncated = false;  // the files start over
    t.result.reset();
    t.stopping = Task::Stop::none;
    t.signal_on_start = 0;
    t.stages.clear();
    t.stages_running = 0;
    t.pid.reset();
    // The slot is the task's from now on, while its processes start (no pid yet) and then run; the pool's
    // counts say so at once. The listener hears of the start once there are processes (or of the failure
    // to start them, alone).
    ++pool.running;
    ++running_;
    running_ids_.insert(t.id);
    counts_.update(t.spec.pool(), t.counted, t.state, t.durable);

    auto spec = prepare_spawn(t);
    if (!spec) {
        start_failed(t, spec.error());
        return;
    }
    int64_t id = t.id;
    int attempt = t.attempts;
    // (Not for a process, which began at its start: a local spawn allocates nothing it does not need.)
    t.begins_later = spawner_.backend(spec->pool) != "local";
    if (t.begins_later) {
        spec->on_began = [this, id, attempt](int64_t at_ms) {
            began(id, attempt, at_ms);
        };
    }
    in_start_ = true;
    spawner_.spawn(
        std::move(*spec),
        [this, id, attempt](common::Result<std::vector<int>> pids) {
            on_started(id, attempt, std::move(pids));
        },
        [this, id](size_t stage, ExitInfo info) { on_stage_exit(id, stage, info); });
    in_start_ = false;
}

void Scheduler::after_starts(const std::vector<int64_t>& ids, std::function<void()> fn) {
    auto waiter = std::make_shared<StartWaiter>();
    for (int64_t id : ids) {
        // A process's start is a matter of microseconds; another backend's (a Slurm submission) is not,
        // and is not waited for.
        if (const Task* t = find(id);
            t != nullptr && t->starting() && spawner_.backend(t->spec.pool()) == "local") {
            ++waiter->remaining;
            start_waiters_.emplace(id, waiter);
        }
    }
    if (waiter->remaining == 0) {
        fn();
    } else {
        waiter->fn = std::move(fn);
    }
}

void Scheduler::release_start_waiters(int64_t id) {
    auto [first, last] = start_waiters_.equal_range(id);
    std::vector<std::shared_ptr<StartWaiter>> ready;
    for (auto it = first; it != last; ++it) {
        if (--it->second->remaining == 0) {
            ready.push_back(it->second);
        }
    }
    start_waiters_.erase(first, last);
    for (auto& w : ready) {
        w->fn();
    }
}

void Scheduler::on_started(int64_t id, int attempt, common::Result<std::vector<int>> pids) {
    started(id, attempt, std::move(pids));
    release_start_waiters(id);
}

void Scheduler::started(int64_t id, int attempt, common::Result<std::vector<int>> pids) {
    Task* t = find(id);
    if (t == nullptr || t->state != TaskState::running || t->attempts != attempt || t->pid) {
        // Nothing waits for these processes any more (cannot happen while a start is in flight: the
        // task holds its slot until on_started): never leave them unsupervised.
        if (pids && !pids->empty()) {
            spawner_.signal_group(pids->front(), SIGKILL);
        }
        return;
    }
    if (!pids) {
        // Answered from within start() (a spawner without a thread), pump's loop goes on by itself.
        bool synchronous = in_start_;
        start_failed(*t, pids.error());
        if (!synchronous) {
            pump(pool_for(t->spec.pool()));
        }
        return;
    }
    t->stages.clear();
    for (int pid : *pids) {
        t->stages.push_back(
            Task::StageRun{pid, false, std::nullopt, std::nullopt, spawner_.start_ticks(pid)});
    }
    t->stages_running = static_cast<uint32_t>(pids->size());
    t->pid = pids->front();
    t->pid_start = spawner_.start_ticks(*t->pid);
    t->started_at_ms = common::now_unix_ms();
    if (t->signal_on_start != 0) {
        spawner_.signal_group(*t->pid, std::exchange(t->signal_on_start, 0));
    }
    if (t->stopping != Task::Stop::none) {
        // Cancelled (or the daemon told to stop) while its processes were starting: stopped now as it
        // would have been then, SIGTERM and the grace asked for.
        Task::Stop why = std::exchange(t->stopping, Task::Stop::none);
        std::optional<double> grace;
        if (auto it = stop_grace_on_start_.find(id); it != stop_grace_on_start_.end()) {
            grace = it->second;
            stop_grace_on_start_.erase(it);
        }
        notify(*t);
        begin_stop(*t, why, grace);
        return;
    }
    if (t->spec.timeout_s() && !t->begins_later) {
        arm_timeout(*t, to_ms(*t->spec.timeout_s()));  // (else began() does)
    }
    notify(*t);
    offer_dependants(*t);
}

void Scheduler::began(int64_t id, int attempt, int64_t at_ms) {
    Task* t = find(id);
    if (t == nullptr || t->state != TaskState::running || t->attempts != attempt || !t->pid) {
        return;
    }
    int64_t now_ms = common::now_unix_ms();
    at_ms = std::clamp(at_ms, t->started_at_ms.value_or(at_ms), now_ms);
    t->started_at_ms = at_ms;
    if (t->spec.timeout_s() && t->stopping == Task::Stop::none) {
        // Its time counts from then, as the backend's own limit (Slurm's --time) does; nothing armed it
        // before (started() and readopt() leave it to this).
        auto left = to_ms(*t->spec.timeout_s()) - std::chrono::milliseconds(now_ms - at_ms);
        arm_timeout(*t, std::max(left, std::chrono::milliseconds(0)));
    }
    notify(*t);
}

void Scheduler::arm_timeout(Task& t, std::chrono::milliseconds delay) {
    int64_t id = t.id;
    t.timeout_timer = timers_.start(delay, [this, id] {
        Task* task = find(id);
        if (task != nullptr && task->state == TaskState::running) {
            task->timeout_timer = 0;
            begin_stop(*task, Task::Stop::timeout);
        }
    });
}

void Scheduler::start_failed(Task& t, const common::Error& why) {
    Pool& pool = pool_for(t.spec.pool());
    --pool.running;
    --running_;
    running_ids_.erase(t.id);
    t.stopping = Task::Stop::none;
    t.signal_on_start = 0;
    stop_grace_on_start_.erase(t.id);
    t.exit_code = spawn_exit_code(why);
    t.error = why.message();
    t.started_at_ms = common::now_unix_ms();
    t.finished_at_ms = t.started_at_ms;
    if (t.spec.cgroup() && cgroups_ != nullptr) {
        cgroups_->release(t.id);
    }
    finish(t, TaskState::failed, FailReason::spawn);
}

void Scheduler::begin_stop(Task& t, Task::Stop why, std::optional<double> kill_after_s) {
    if (t.state != TaskState::running) {
        return;
    }
    if (!t.pid) {
        // Its processes are starting: on_started stops them once they have pids.
        t.stopping = why;
        if (kill_after_s) {
            stop_grace_on_start_[t.id] = kill_after_s;
        }
        return;
    }
    int pgid = *t.pid;
    if (why == Task::Stop::hangup) {
        t.stopping = why;
        spawner_.signal_group(pgid, SIGHUP);
        return;
    }
    double grace = kill_after_s.value_or(t.spec.kill_after_s());
    // A hang-up is only a signal sent: what is asked now stops the task as if it had not been.
    if (t.stopping != Task::Stop::none && t.stopping != Task::Stop::hangup) {
        // Already terminating (a timeout's grace period): an explicit cancel or a shutdown decides how it
        // ends, and a grace of zero kills it now.
        if (why != Task::Stop::timeout) {
            t.stopping = why;
        }
        if (grace <= 0) {
            kill_now(t);
        }
        return;
    }
    t.stopping = why;
    if (grace <= 0) {
        kill_now(t);
        return;
    }
    spawner_.signal_group(pgid, SIGTERM);
    // The group, not just the leader: shell children and background jobs get the same treatment.
    // Also once the leader is gone: what is left of the group still gets its SIGKILL.
    int64_t id = t.id;
    bool cgroup = t.spec.cgroup();
    t.kill_timer = timers_.start(to_ms(grace), [this, id, pgid, cgroup] { kill_now(id, pgid, cgroup); });
}

void Scheduler::kill_now(Task& t) {
    if (t.pid) {
        kill_now(t.id, *t.pid, t.spec.cgroup());
    }
}

void Scheduler::kill_now(int64_t id, int pgid, bool cgroup) {
    spawner_.signal_group(pgid, SIGKILL);
    if (cgroup && cgroups_ != nullptr) {
        cgroups_->kill(id);  // what left the group is still in the cgroup
    }
}

common::Result<common::UniqueFd> Scheduler::cgroup_for(const Task& t) {
    if (!t.spec.cgroup()) {
        return common::UniqueFd();
    }
    if (cgroups_ == nullptr) {
        return common::plain_error("containment is not available in this daemon");
    }
    return cgroups_->create(t.id);
}

bool Scheduler::signal(int64_t id, int signo) {
    Task* t = find(id);
    if (t == nullptr || t->state != TaskState::running) {
        return false;
    }
    if (!t->pid) {
        t->signal_on_start = static_cast<uint8_t>(signo);  // delivered as soon as there is a group
        return true;
    }
    spawner_.signal_group(*t->pid, signo);
    return true;
}

bool Scheduler::attach(int64_t id) {
    Task* t = find(id);
    if (t == nullptr || t->finished()) {
        return false;
    }
    t->attached = true;
    return true;
}

void Scheduler::hang_up(int64_t id) {
    Task* t = find(id);
    if (t == nullptr || t->finished()) {
        return;
    }
    t->attached = false;
    if (t->state != TaskState::running) {
        // Queued, waiting on its dependencies or between attempts: nothing ran for it yet, or nothing runs.
        dequeue(*t);
        t->error = "cancelled: its client went away before it started";
        finish(*t, TaskState::cancelled, FailReason::none);
        return;
    }
    if (t->stopping == Task::Stop::none) {
        begin_stop(*t, Task::Stop::hangup);
    }
}

void Scheduler::enforce_output_limits() {
    for (int64_t id : running_ids_) {
        if (Task* t = find(id)) {
            cap_output(outputs_, *t, max_output(*t));
        }
    }
}

void Scheduler::on_stage_exit(int64_t id, size_t stage, ExitInfo info) {
    Task* t = find(id);
    if (t == nullptr || t->state != TaskState::running || stage >= t->stages.size() ||
        t->stages[stage].exited) {
        return;
    }
    Task::StageRun& run = t->stages[stage];
    run.exited = true;
    run.exit_code = info.exit_code;
    run.signal = info.signal;
    run.unknown = info.unknown;
    if (--t->stages_running > 0) {
        // The task ends with its last process; until then only the journal hears of it, so that a daemon
        // that re-adopts the rest still knows how this stage ended.
        listener_.task_progressed(*t);
        return;
    }
    if (std::any_of(t->stages.begin(), t->stages.end(), [](const Task::StageRun& s) { return s.unknown; })) {
        // An adopted process whose status nobody recorded: the pipeline's outcome cannot be weighed.
        ExitInfo unknown;
        unknown.unknown = true;
        unknown.note = std::move(info.note);
        unknown.ended_at_ms = info.ended_at_ms;
        on_exit(id, std::move(unknown));
        return;
    }
    ExitInfo outcome = pipeline_outcome(*t);
    outcome.note = std::move(info.note);      // only a warm worker's task, one process, has one
    outcome.result = std::move(info.result);  // likewise
    outcome.ended_at_ms = info.ended_at_ms;   // the last stage's (a Slurm job is one)
    on_exit(id, std::move(outcome));
}

void Scheduler::on_exit(int64_t id, ExitInfo info) {
    Task* t = find(id);
    if (t == nullptr || t->state != TaskState::running) {
        return;
    }
    Pool& pool = pool_for(t->spec.pool());
    --pool.running;
    --running_;
    running_ids_.erase(t->id);
    // The freed slot goes to the next task first: the bookkeeping below can wait, the slot should not. Not
    // in a pool that may halt: whether this exit halts it is known only once it is finished below.
    if (pool.halt_after_failures == 0) {
        pump(pool);
    }
    cap_output(outputs_, *t, max_output(*t));  // the last cut: what is kept is final now
    if (t->spec.cgroup() && cgroups_ != nullptr) {
        cgroups_->release(t->id);  // nothing it started outlives it
    }
    timers_.cancel(t->timeout_timer);
    t->timeout_timer = 0;
    int pgid = t->pid.value_or(0);
    t->pid.reset();
    t->pid_start = 0;
    if (t->kill_timer != 0) {
        // Keep the SIGKILL escalation only while something of the group survives its leader.
        if (!spawner_.group_alive(pgid)) {
            timers_.cancel(t->kill_timer);
        }
        t->kill_timer = 0;
    }
    t->exit_code = info.exit_code;
    t->signal = info.signal;
    t->result = std::move(info.result);
    // Never before it started nor after now, whatever another machine's clock said.
    int64_t now_ms = common::now_unix_ms();
    int64_t started_ms = std::min(t->started_at_ms.value_or(now_ms), now_ms);
    t->finished_at_ms = std::clamp(info.ended_at_ms.value_or(now_ms), started_ms, now_ms);
    Task::Stop why = t->stopping;
    t->stopping = Task::Stop::none;

    if (why == Task::Stop::cancel || why == Task::Stop::shutdown) {
        t->error = why == Task::Stop::cancel ? "cancelled while running" : "stopped by daemon shutdown";
        finish(*t, TaskState::cancelled, FailReason::none);
    } else if (why == Task::Stop::dependency) {
        finish(*t, TaskState::failed, FailReason::dependency);  // its error names the dependency
    } else if (info.unknown) {
        // Re-adopted after a restart, it ended, and neither the exit journal nor the kernel said how (or a
        // Slurm job ended without a readable status, which its note says): not retried, since it may have
        // done its work.
        t->error = info.note.empty()
                       ? "re-adopted after a daemon restart, it ended without any record of its exit status"
                       : info.note;
        finish(*t, TaskState::failed, FailReason::lost);
    } else {
        FailReason reason = FailReason::none;
        if (why == Task::Stop::timeout) {
            reason = FailReason::timeout;
        } else if (info.signal) {
            reason = FailReason::signal;
        } else if (info.exit_code.value_or(1) != 0) {
            reason = FailReason::exit;
        }
        bool hung_up = why == Task::Stop::hangup;
        if (reason == FailReason::none) {
            finish(*t, TaskState::succeeded, FailReason::none);
        } else if (!hung_up && t->attempts <= t->spec.retries()) {
            retry_later(*t, reason);
        } else {
            if (hung_up) {
                t->error = "its client went away (SIGHUP sent), then " + describe_failure(reason, *t);
            } else if (reason != FailReason::exit) {
                t->error = describe_failure(reason, *t);
            }
            if (!info.note.empty()) {
                t->error = (reason == FailReason::exit && !hung_up) || !t->error
                               ? info.note
                               : *t->error + "; " + info.note;
            }
            finish(*t, TaskState::failed, reason);
        }
    }
    pump(pool);
    if (pool.transient && pool.owner_gone && pool.running == 0 && pool.ready.empty()) {
        drop_if_idle(std::string(pool.name));  // a copy: the pool may go
    }
}

void Scheduler::retry_later(Task& t, FailReason reason) {
    t.state = TaskState::pending;
    t.error =
        "attempt " + std::to_string(t.attempts) + " failed (" + describe_failure(reason, t) + "); will retry";
    t.finished_at_ms.reset();
    if (!starting_) {
        notify(t);  // stays pending for the next start of the daemon
    } else if (t.spec.retry_delay_s() <= 0) {
        enqueue(t);
        notify(t);
    } else {
        int64_t id = t.id;
        t.retry_timer = timers_.start(to_ms(t.spec.retry_delay_s()), [this, id] {
            Task* task = find(id);
            if (task != nullptr && task->state == TaskState::pending) {
                task->retry_timer = 0;
                enqueue(*task);
                pump(pool_for(task->spec.pool()));
            }
        });
        notify(t);
    }
}

}  // namespace mpctl::daemon
