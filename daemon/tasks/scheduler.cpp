#include <cstring>
#include <fcntl.h>
#include <signal.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/signals.hpp>
#include <mpctl/common/time.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>

namespace mpctl::daemon {

namespace {

// How many queued tasks per pool get their output files prepared before they start.
constexpr size_t k_output_lookahead = 8;

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
            return "timed out after " + std::to_string(t.spec.timeout_s.value_or(0)) + "s";
        default:
            return std::string(proto::to_string(reason));
    }
}

}  // namespace

Scheduler::Scheduler(Spawner& spawner, Timers& timers, OutputLayout& outputs, SchedulerListener& listener,
                     Options options)
    : spawner_(spawner),
      timers_(timers),
      outputs_(outputs),
      listener_(listener),
      options_(std::move(options)) {
    pool_for(proto::k_default_pool);
    // Pools sized in the config file or with `pool set` exist (and are listed) before their first task.
    for (const auto& [name, workers] : options_.pool_workers) {
        pool_for(name);
    }
}

Scheduler::Pool& Scheduler::pool_for(const std::string& name) {
    auto it = pools_.find(name);
    if (it != pools_.end()) {
        return it->second;
    }
    Pool pool;
    pool.name = name;
    auto configured = options_.pool_workers.find(name);
    pool.workers = configured != options_.pool_workers.end() ? configured->second : options_.default_workers;
    return pools_.emplace(name, std::move(pool)).first->second;
}

Task& Scheduler::add(proto::TaskSpec spec, int64_t submitted_at_ms) {
    Task task;
    task.id = next_id_++;
    task.spec = std::move(spec);
    task.submitted_at_ms = submitted_at_ms;
    pool_for(task.spec.pool);
    return tasks_.emplace(task.id, std::move(task)).first->second;
}

void Scheduler::make_durable(int64_t id) {
    if (Task* t = find(id)) {
        t->durable = true;
    }
}

void Scheduler::schedule(int64_t id) {
    Task* t = find(id);
    if (t == nullptr || !t->durable || t->finished() || t->queued || t->state != TaskState::pending) {
        return;
    }
    if (auto it = pools_.find(t->spec.pool);
        it != pools_.end() && it->second.transient && (it->second.owner_gone || !starting_)) {
        // Committed after its pool's owner went away (or the daemon began to stop): nobody will collect it.
        t->error = orphan_error(t->spec.pool,
                                it->second.owner_gone ? Orphaned::owner_left : Orphaned::daemon_stopped);
        finish(*t, TaskState::cancelled, FailReason::none);
        drop_if_idle(std::string(t->spec.pool));
        return;
    }
    resolve_dependencies(*t);
    pump(pool_for(t->spec.pool));
}

void Scheduler::discard(int64_t id) {
    auto it = tasks_.find(id);
    if (it != tasks_.end() && !it->second.durable) {
        tasks_.erase(it);
    }
}

void Scheduler::restore(Task task) {
    task.durable = true;
    set_next_id(task.id + 1);
    if (task.finished()) {
        task.spec.env.reset();  // only needed to run it
    } else {
        pool_for(task.spec.pool);  // pools of finished tasks only (a map's) do not come back
    }
    tasks_.insert_or_assign(task.id, std::move(task));
}

void Scheduler::resume() {
    int64_t now = common::now_unix_ms();
    for (auto& [id, t] : tasks_) {
        if (t.state == TaskState::running) {
            t.pid.reset();
            t.finished_at_ms = now;
            t.error = "the daemon stopped while the task ran; its outcome is unknown";
            finish(t, TaskState::failed, FailReason::lost);
        }
    }
    // The queues of maps whose daemon died (orphan_restored_pool: at start every transient pool is one)
    // have nobody to collect them.
    std::vector<std::string> orphaned = cancel_transient_queues(Orphaned::daemon_restarted);
    for (auto& [id, t] : tasks_) {
        if (t.state == TaskState::pending && !t.queued && t.unmet_deps == 0) {
            resolve_dependencies(t);
        }
    }
    pump_all();
    for (const auto& name : orphaned) {
        drop_if_idle(name);
    }
}

Task* Scheduler::find(int64_t id) {
    auto it = tasks_.find(id);
    return it == tasks_.end() ? nullptr : &it->second;
}

size_t Scheduler::unfinished_count() const {
    size_t n = 0;
    for (const auto& [id, t] : tasks_) {
        n += t.finished() ? 0 : 1;
    }
    return n;
}

void Scheduler::resolve_dependencies(Task& t) {
    t.unmet_deps = 0;
    for (int64_t dep_id : t.spec.after) {
        Task* dep = find(dep_id);
        if (dep != nullptr && dep->state == TaskState::succeeded) {
            continue;
        }
        if (dep == nullptr || dep->finished()) {
            t.error =
                "dependency " + std::to_string(dep_id) + " " +
                (dep == nullptr ? std::string("does not exist") : std::string(proto::to_string(dep->state)));
            t.finished_at_ms = common::now_unix_ms();
            finish(t, TaskState::failed, FailReason::dependency);
            return;
        }
        dep->dependants.push_back(t.id);
        ++t.unmet_deps;
    }
    if (t.unmet_deps == 0) {
        enqueue(t);
    }
}

void Scheduler::enqueue(Task& t) {
    if (t.queued) {
        return;
    }
    Pool& pool = pool_for(t.spec.pool);
    t.queue_seq = enqueue_seq_++;
    pool.ready.emplace(-t.spec.priority, t.queue_seq, t.id);
    t.queued = true;
}

void Scheduler::dequeue(Task& t) {
    if (!t.queued) {
        return;
    }
    pool_for(t.spec.pool).ready.erase({-t.spec.priority, t.queue_seq, t.id});
    t.queued = false;
}

void Scheduler::pump(Pool& pool) {
    while (starting_ && pool.running < pool.workers && !pool.ready.empty()) {
        auto first = pool.ready.begin();
        int64_t id = std::get<2>(*first);
        pool.ready.erase(first);
        Task* t = find(id);
        if (t == nullptr) {
            continue;
        }
        t->queued = false;
        start(*t, pool);
    }
    // The next ones to start get their output files made ahead, off the loop, while creating them is slow.
    if (!outputs_.prepares_ahead()) {
        return;
    }
    size_t ahead = 0;
    for (auto it = pool.ready.begin(); it != pool.ready.end() && ahead < k_output_lookahead; ++it, ++ahead) {
        Task* t = find(std::get<2>(*it));
        if (t != nullptr && !t->output_expected && t->attempts == 0) {
            t->output_expected = true;
            outputs_.expect(t->id);
        }
    }
}

void Scheduler::pump_all() {
    for (auto& [name, pool] : pools_) {
        pump(pool);
    }
}

std::shared_ptr<const EnvBlock> Scheduler::env_block(const std::shared_ptr<const proto::Environment>& env) {
    if (!env) {
        if (!daemon_env_block_) {
            daemon_env_block_ = std::make_shared<const EnvBlock>(options_.daemon_env);
        }
        return daemon_env_block_;
    }
    auto it = env_blocks_.find(env.get());
    if (it != env_blocks_.end() && it->second.env.lock() == env) {
        return it->second.block;
    }
    if (env_blocks_.size() > 256) {
        std::erase_if(env_blocks_, [](const auto& item) { return item.second.env.expired(); });
    }
    std::vector<std::string> entries;
    entries.reserve(env->size());
    for (const auto& [k, v] : *env) {
        entries.push_back(k + "=" + v);
    }
    auto block = std::make_shared<const EnvBlock>(std::move(entries));
    env_blocks_[env.get()] = CachedBlock{env, block};
    return block;
}

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
    s.cwd = t.spec.cwd.empty() ? options_.default_cwd : t.spec.cwd;
    s.env = env_block(t.spec.env);
    s.stdin_path = t.spec.stdin_path;
    s.stdout_path = std::move(paths.stdout_path);
    s.nice = t.spec.nice;
    s.umask = t.spec.umask;
    for (const auto& [name, value] : t.spec.rlimits) {
        s.rlimits.emplace_back(proto::rlimit_resource(name), value);
    }
    return s;
}

void Scheduler::start(Task& t, Pool& pool) {
    ++t.attempts;
    t.state = TaskState::running;
    t.reason = FailReason::none;
    t.started_at_ms = common::now_unix_ms();
    t.finished_at_ms.reset();
    t.exit_code.reset();
    t.signal.reset();
    t.error.reset();
    t.truncated = false;  // the files start over
    t.stopping = Task::Stop::none;

    SpawnSpec spec = spawn_spec(t);
    std::expected<std::vector<int>, SpawnError> pids = std::unexpected(SpawnError{});
    if (t.spec.stdin_passed && !t.passed_stdin) {
        pids = std::unexpected(SpawnError{
            126, "stdin: the descriptor the client passed is gone (the daemon restarted since the submit)",
            0});
    } else if (auto procs = cgroup_for(t); !procs) {
        pids = std::unexpected(SpawnError{126, "cgroup: " + procs.error().message(), 0});
    } else if (auto files = outputs_.open(t.id, spec.stages.size()); !files) {
        pids = std::unexpected(SpawnError{126, "output: " + files.error().message(), 0});
    } else {
        spec.stdout_fd = std::move(files->stdout_fd);
        spec.cgroup_procs_fd = std::move(*procs);
        for (size_t i = 0; i < spec.stages.size(); ++i) {
            spec.stages[i].stderr_fd = std::move(files->stderr_fds[i]);
        }
        if (t.passed_stdin) {
            // Every attempt reads from the same descriptor; it is duplicated so that each spawn owns one.
            spec.stdin_fd.reset(::fcntl(t.passed_stdin->get(), F_DUPFD_CLOEXEC, 3));
        }
        if (t.passed_stdin && !spec.stdin_fd) {
            pids = std::unexpected(SpawnError{126, std::string("stdin: ") + std::strerror(errno), 0});
        } else {
            int64_t id = t.id;
            pids = spawner_.spawn(
                std::move(spec), [this, id](size_t stage, ExitInfo info) { on_stage_exit(id, stage, info); });
        }
    }
    if (!pids) {
        t.exit_code = pids.error().exit_code;
        t.error = t.spec.pipeline.empty()
                      ? pids.error().message
                      : "stage " + std::to_string(pids.error().stage) + ": " + pids.error().message;
        t.finished_at_ms = common::now_unix_ms();
        if (t.spec.cgroup && cgroups_ != nullptr) {
            cgroups_->release(t.id);
        }
        finish(t, TaskState::failed, FailReason::spawn);
        return;
    }
    t.stages.clear();
    for (int pid : *pids) {
        t.stages.push_back(Task::StageRun{pid, false, std::nullopt, std::nullopt});
    }
    t.stages_running = pids->size();
    t.pid = pids->front();
    ++pool.running;
    ++running_;
    running_ids_.insert(t.id);
    if (t.spec.timeout_s) {
        int64_t id = t.id;
        t.timeout_timer = timers_.start(to_ms(*t.spec.timeout_s), [this, id] {
            Task* task = find(id);
            if (task != nullptr && task->state == TaskState::running) {
                task->timeout_timer = 0;
                begin_stop(*task, Task::Stop::timeout);
            }
        });
    }
    notify(t);
}

void Scheduler::begin_stop(Task& t, Task::Stop why, std::optional<double> kill_after_s) {
    if (t.state != TaskState::running || !t.pid) {
        return;
    }
    int pgid = *t.pid;
    double grace = kill_after_s.value_or(t.spec.kill_after_s);
    if (t.stopping != Task::Stop::none) {
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
    bool cgroup = t.spec.cgroup;
    t.kill_timer = timers_.start(to_ms(grace), [this, id, pgid, cgroup] { kill_now(id, pgid, cgroup); });
}

void Scheduler::kill_now(Task& t) {
    if (t.pid) {
        kill_now(t.id, *t.pid, t.spec.cgroup);
    }
}

void Scheduler::kill_now(int64_t id, int pgid, bool cgroup) {
    spawner_.signal_group(pgid, SIGKILL);
    if (cgroup && cgroups_ != nullptr) {
        cgroups_->kill(id);  // what left the group is still in the cgroup
    }
}

common::Result<common::UniqueFd> Scheduler::cgroup_for(const Task& t) {
    if (!t.spec.cgroup) {
        return common::UniqueFd();
    }
    if (cgroups_ == nullptr) {
        return common::plain_error("containment is not available in this daemon");
    }
    return cgroups_->create(t.id);
}

void Scheduler::enforce_output_limits() {
    for (int64_t id : running_ids_) {
        if (Task* t = find(id)) {
            enforce_output_limit(*t);
        }
    }
}

void Scheduler::enforce_output_limit(Task& t) {
    uint64_t limit = max_output(t);
    OutputPaths paths = outputs_.paths(t.id);
    bool cut = OutputLayout::cap(paths.stdout_path, limit);
    if (t.spec.pipeline.empty()) {
        cut = OutputLayout::cap(paths.stderr_path, limit) || cut;
    } else {
        for (size_t i = 0; i < t.spec.pipeline.size(); ++i) {
            cut = OutputLayout::cap(outputs_.stage_stderr_path(t.id, i), limit) || cut;
        }
    }
    if (cut && !t.truncated) {
        spdlog::info("task {}: output past {} bytes is not kept", t.id, limit);
    }
    t.truncated = t.truncated || cut;
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
    if (--t->stages_running > 0) {
        return;  // the task ends with its last process
    }
    on_exit(id, pipeline_outcome(*t));
}

bool Scheduler::stage_succeeded(const Task& t, size_t i) {
    const Task::StageRun& s = t.stages[i];
    // A stage before the last that died of SIGPIPE did not fail: its reader closed early on purpose, as in
    // `yes | head -1`. A shell stage reports the same as exit status 128+SIGPIPE (`sh -c '...; yes'`).
    bool before_last = i + 1 < t.stages.size();
    bool broken_pipe = s.signal == SIGPIPE || (!s.signal && s.exit_code == 128 + SIGPIPE);
    if (before_last && broken_pipe) {
        return true;
    }
    return !s.signal && s.exit_code.value_or(0) == 0;
}

ExitInfo Scheduler::pipeline_outcome(const Task& t) {
    // pipefail: the rightmost stage that failed decides.
    for (size_t i = t.stages.size(); i-- > 0;) {
        if (!stage_succeeded(t, i)) {
            return ExitInfo{t.stages[i].exit_code, t.stages[i].signal};
        }
    }
    return ExitInfo{0, std::nullopt};
}

void Scheduler::on_exit(int64_t id, ExitInfo info) {
    Task* t = find(id);
    if (t == nullptr || t->state != TaskState::running) {
        return;
    }
    Pool& pool = pool_for(t->spec.pool);
    --pool.running;
    --running_;
    running_ids_.erase(t->id);
    // The freed slot goes to the next task first: the bookkeeping below can wait, the slot should not.
    pump(pool);
    enforce_output_limit(*t);  // the last cut: what is kept is final now
    if (t->spec.cgroup && cgroups_ != nullptr) {
        cgroups_->release(t->id);  // nothing it started outlives it
    }
    timers_.cancel(t->timeout_timer);
    t->timeout_timer = 0;
    int pgid = t->pid.value_or(0);
    t->pid.reset();
    if (t->kill_timer != 0) {
        // Keep the SIGKILL escalation only while something of the group survives its leader.
        if (!spawner_.group_alive(pgid)) {
            timers_.cancel(t->kill_timer);
        }
        t->kill_timer = 0;
    }
    t->exit_code = info.exit_code;
    t->signal = info.signal;
    t->finished_at_ms = common::now_unix_ms();
    Task::Stop why = t->stopping;
    t->stopping = Task::Stop::none;

    if (why == Task::Stop::cancel || why == Task::Stop::shutdown) {
        t->error = why == Task::Stop::cancel ? "cancelled while running" : "stopped by daemon shutdown";
        finish(*t, TaskState::cancelled, FailReason::none);
    } else {
        FailReason reason = FailReason::none;
        if (why == Task::Stop::timeout) {
            reason = FailReason::timeout;
        } else if (info.signal) {
            reason = FailReason::signal;
        } else if (info.exit_code.value_or(1) != 0) {
            reason = FailReason::exit;
        }
        if (reason == FailReason::none) {
            finish(*t, TaskState::succeeded, FailReason::none);
        } else if (t->attempts <= t->spec.retries) {
            t->state = TaskState::pending;
            t->error = "attempt " + std::to_string(t->attempts) + " failed (" + describe_failure(reason, *t) +
                       "); will retry";
            t->finished_at_ms.reset();
            if (!starting_) {
                notify(*t);  // stays pending for the next start of the daemon
            } else if (t->spec.retry_delay_s <= 0) {
                enqueue(*t);
                notify(*t);
            } else {
                t->retry_timer = timers_.start(to_ms(t->spec.retry_delay_s), [this, id] {
                    Task* task = find(id);
                    if (task != nullptr && task->state == TaskState::pending) {
                        task->retry_timer = 0;
                        enqueue(*task);
                        pump(pool_for(task->spec.pool));
                    }
                });
                notify(*t);
            }
        } else {
            if (reason != FailReason::exit) {
                t->error = describe_failure(reason, *t);
            }
            finish(*t, TaskState::failed, reason);
        }
    }
    pump(pool);
    if (pool.transient && pool.owner_gone && pool.running == 0 && pool.ready.empty()) {
        drop_if_idle(std::string(pool.name));  // a copy: the pool may go
    }
}

void Scheduler::finish(Task& t, TaskState state, FailReason reason) {
    t.state = state;
    t.reason = reason;
    if (t.output_expected && t.attempts == 0) {
        outputs_.forget(t.id);
    }
    if (!t.finished_at_ms) {
        t.finished_at_ms = common::now_unix_ms();
    }
    timers_.cancel(t.retry_timer);
    t.retry_timer = 0;
    notify(t);
    t.spec.env.reset();      // only needed to run it; finished tasks stay in memory for queries
    t.passed_stdin.reset();  // the writer on the other end sees EPIPE once nobody can read any more
    release_dependants(t);
}

void Scheduler::release_dependants(const Task& finished) {
    std::vector<int64_t> work{finished.id};
    while (!work.empty()) {
        Task* done = find(work.back());
        work.pop_back();
        if (done == nullptr) {
            continue;
        }
        std::vector<int64_t> dependants = std::move(done->dependants);
        done->dependants.clear();
        for (int64_t dep_id : dependants) {
            Task* d = find(dep_id);
            if (d == nullptr || d->finished()) {
                continue;
            }
            if (done->state == TaskState::succeeded) {
                if (d->unmet_deps > 0 && --d->unmet_deps == 0 && d->durable) {
                    enqueue(*d);
                    pump(pool_for(d->spec.pool));
                }
                continue;
            }
            dequeue(*d);
            d->state = TaskState::failed;
            d->reason = FailReason::dependency;
            d->finished_at_ms = common::now_unix_ms();
            d->error =
                "dependency " + std::to_string(done->id) + " " + std::string(proto::to_string(done->state));
            timers_.cancel(d->retry_timer);
            d->retry_timer = 0;
            notify(*d);
            d->spec.env.reset();
            work.push_back(d->id);
        }
    }
}

void Scheduler::notify(const Task& t) {
    if (t.durable) {
        listener_.task_changed(t);
    }
}

Scheduler::CancelResult Scheduler::cancel(int64_t id, bool force) {
    Task* t = find(id);
    if (t == nullptr || t->finished()) {
        return CancelResult::already_finished;
    }
    if (t->state == TaskState::running) {
        if (!force) {
            return CancelResult::running;
        }
        begin_stop(*t, Task::Stop::cancel);
        return CancelResult::terminating;
    }
    dequeue(*t);
    t->error = "cancelled before it started";
    finish(*t, TaskState::cancelled, FailReason::none);
    return CancelResult::cancelled;
}

bool Scheduler::signal(int64_t id, int signo) {
    Task* t = find(id);
    if (t == nullptr || t->state != TaskState::running || !t->pid) {
        return false;
    }
    spawner_.signal_group(*t->pid, signo);
    return true;
}

void Scheduler::set_pool_workers(const std::string& name, int workers, bool transient) {
    if (!transient) {
        options_.pool_workers[name] = workers;
        if (name == proto::k_default_pool) {
            options_.default_workers = workers;
        }
    }
    Pool& pool = pool_for(name);
    pool.workers = workers;
    pool.transient = transient && name != proto::k_default_pool;
    pool.owner_gone = false;
    pump(pool);
}

void Scheduler::release_transient_pool(const std::string& name) {
    auto it = pools_.find(name);
    if (it == pools_.end() || !it->second.transient) {
        return;
    }
    it->second.owner_gone = true;
    if (starting_) {
        // Nobody is left to collect what has not started (a map killed with SIGKILL, a dropped ssh
        // session): cancel it, as a killed xargs or GNU parallel starts nothing more. Running tasks finish.
        // (While the daemon stops, cancel_transient_pending has done this already.)
        cancel_pending_in(&name, orphan_error(name, Orphaned::owner_left));
    }
    drop_if_idle(name);
}

void Scheduler::cancel_transient_pending() {
    (void)cancel_transient_queues(Orphaned::daemon_stopped);
}

std::vector<std::string> Scheduler::cancel_transient_queues(Orphaned why) {
    std::vector<std::string> names;  // first: a cancel can drop a pool (its dependants are rescheduled)
    for (const auto& [name, pool] : pools_) {
        if (pool.transient) {
            names.push_back(name);
        }
    }
    for (const auto& name : names) {
        cancel_pending_in(&name, orphan_error(name, why));
    }
    return names;
}

std::string Scheduler::orphan_error(const std::string& pool, Orphaned why) {
    switch (why) {
        case Orphaned::owner_left:
            return "cancelled before it started: the connection that owned pool " + pool + " closed";
        case Orphaned::daemon_stopped:
            return "cancelled before it started: the daemon stopped, and pool " + pool +
                   " lives only as long as the connection that owns it";
        case Orphaned::daemon_restarted:
            break;
    }
    return "cancelled before it started: the daemon restarted, and pool " + pool +
           " lived only as long as the connection that owned it";
}

void Scheduler::orphan_restored_pool(const std::string& name) {
    Pool& pool = pool_for(name);
    pool.transient = true;
    pool.owner_gone = true;  // resume() cancels its queue
}

void Scheduler::cancel_pending_in(const std::string* pool, const std::string& why) {
    // Newest first: dependants always have higher ids than their dependencies, so each is cancelled
    // before a cancelled dependency could fail it with reason `dependency`. A task whose submit is still
    // being committed is not durable yet: schedule() sees to it.
    std::vector<int64_t> ids;
    for (auto it = tasks_.rbegin(); it != tasks_.rend(); ++it) {
        const Task& t = it->second;
        if (t.state == TaskState::pending && t.durable && (pool == nullptr || t.spec.pool == *pool)) {
            ids.push_back(t.id);
        }
    }
    for (int64_t id : ids) {
        Task* t = find(id);
        if (t == nullptr || t->state != TaskState::pending) {
            continue;
        }
        dequeue(*t);
        t->error = why;
        finish(*t, TaskState::cancelled, FailReason::none);
    }
}

void Scheduler::drop_if_idle(const std::string& name) {
    auto it = pools_.find(name);
    if (it == pools_.end() || !it->second.transient || !it->second.owner_gone || it->second.running > 0 ||
        !it->second.ready.empty()) {
        return;
    }
    // Tasks waiting on dependencies or a retry are in no queue: look for them (once per drained pool).
    for (const auto& [id, t] : tasks_) {
        if (!t.finished() && t.spec.pool == name) {
            return;
        }
    }
    pools_.erase(it);
    listener_.transient_pool_dropped(name);
}

std::vector<PoolInfo> Scheduler::pools() const {
    std::map<std::string, PoolInfo> info;
    for (const auto& [name, pool] : pools_) {
        info[name] = PoolInfo{name, pool.workers,  pool.running, static_cast<int>(pool.ready.size()),
                              0,    pool.transient};
    }
    for (const auto& [id, t] : tasks_) {
        if (t.state == TaskState::pending && !t.queued && t.durable) {
            ++info[t.spec.pool].waiting;
        }
    }
    std::vector<PoolInfo> out;
    for (auto& [name, i] : info) {
        out.push_back(std::move(i));
    }
    return out;
}

int Scheduler::pool_workers(const std::string& name) const {
    auto it = pools_.find(name);
    if (it != pools_.end()) {
        return it->second.workers;
    }
    auto configured = options_.pool_workers.find(name);
    return configured != options_.pool_workers.end() ? configured->second : options_.default_workers;
}

void Scheduler::stop_starting() {
    starting_ = false;
}

void Scheduler::terminate_running(std::optional<double> kill_after_s) {
    for (auto& [id, t] : tasks_) {
        if (t.state == TaskState::running) {
            begin_stop(t, Task::Stop::shutdown, kill_after_s);
        }
    }
}

void Scheduler::cancel_pending() {
    cancel_pending_in(nullptr, "cancelled by daemon shutdown");
}

proto::TaskStatus Scheduler::status(const Task& t) const {
    proto::TaskStatus s;
    s.id = t.id;
    s.name = t.spec.name;
    s.state = t.state;
    s.reason = t.reason;
    s.exit_code = t.exit_code;
    s.signal = t.signal;
    if (t.spec.shell) {
        s.shell = t.spec.shell;
    } else {
        s.argv = t.spec.argv;
    }
    s.cwd = t.spec.cwd.empty() ? options_.default_cwd : t.spec.cwd;
    s.pool = t.spec.pool;
    s.priority = t.spec.priority;
    s.labels = t.spec.labels;
    s.after = t.spec.after;
    s.submitted_at_ms = t.submitted_at_ms;
    s.started_at_ms = t.started_at_ms;
    s.finished_at_ms = t.finished_at_ms;
    s.attempts = t.attempts;
    s.retries = t.spec.retries;
    s.timeout_s = t.spec.timeout_s;
    s.pid = t.pid;
    OutputPaths paths = outputs_.paths(t.id);
    s.stdout_path = std::move(paths.stdout_path);
    s.stderr_path = std::move(paths.stderr_path);
    s.error = t.error;
    s.truncated = t.truncated;
    if (!t.spec.pipeline.empty()) {
        s.argv.reset();
        s.stages.emplace();
        bool this_attempt = t.stages.size() == t.spec.pipeline.size();
        for (size_t i = 0; i < t.spec.pipeline.size(); ++i) {
            proto::StageStatus st;
            st.argv = t.spec.pipeline[i];
            st.stderr_path = outputs_.stage_stderr_path(t.id, i);
            if (!this_attempt) {
                st.state = t.finished() ? "failed" : "pending";  // never started (spawn failure, cancel)
            } else if (!t.stages[i].exited) {
                if (t.finished()) {
                    st.state = "failed";  // lost with the daemon that ran it
                } else {
                    st.state = "running";
                    st.pid = t.stages[i].pid;
                }
            } else {
                st.exit_code = t.stages[i].exit_code;
                st.signal = t.stages[i].signal;
                st.state = stage_succeeded(t, i) ? "succeeded" : "failed";
            }
            s.stages->push_back(std::move(st));
        }
        s.stderr_path = s.stages->back().stderr_path;
    }
    return s;
}

}  // namespace mpctl::daemon
