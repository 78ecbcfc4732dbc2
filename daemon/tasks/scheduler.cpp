// Scheduler: submission, restore after a restart, dependencies, and how a task finishes.

#include <algorithm>

#include <mpctl/common/time.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>

namespace mpctl::daemon {

Scheduler::Scheduler(Spawner& spawner, Timers& timers, OutputLayout& outputs, TaskListener& listener,
                     Options options)
    : spawner_(spawner),
      timers_(timers),
      outputs_(outputs),
      listener_(listener),
      options_(std::move(options)),
      env_blocks_(options_.daemon_env) {
    pool_for(proto::k_default_pool);
    // Pools sized in the config file or with `pool set` exist (and are listed) before their first task.
    for (const auto& [name, workers] : options_.pool_workers) {
        pool_for(name);
    }
}

Task& Scheduler::add(proto::TaskSpec spec, int64_t submitted_at_ms) {
    Task task;
    task.id = next_id_++;
    task.spec = CompactSpec(std::move(spec), &strings_);
    task.submitted_at_ms = submitted_at_ms;
    pool_for(task.spec.pool());
    Task& added = tasks_.emplace(task.id, std::move(task)).first->second;
    counts_.update(added.spec.pool(), added.counted, added.state, added.durable);
    return added;
}

void Scheduler::make_durable(int64_t id) {
    if (Task* t = find(id)) {
        t->durable = true;
        counts_.update(t->spec.pool(), t->counted, t->state, t->durable);
    }
}

void Scheduler::schedule(int64_t id) {
    Task* t = find(id);
    if (t == nullptr || !t->durable || t->finished() || t->queued || t->state != TaskState::pending) {
        return;
    }
    if (auto it = pools_.find(t->spec.pool());
        it != pools_.end() && it->second.transient && (it->second.owner_gone || !starting_)) {
        // Committed after its pool's owner went away (or the daemon began to stop): nobody will collect it.
        t->error = orphan_error(t->spec.pool(),
                                it->second.owner_gone ? Orphaned::owner_left : Orphaned::daemon_stopped);
        finish(*t, TaskState::cancelled, FailReason::none);
        drop_if_idle(std::string(t->spec.pool()));
        return;
    }
    resolve_dependencies(*t);
    pump(pool_for(t->spec.pool()));
}

void Scheduler::discard(int64_t id) {
    auto it = tasks_.find(id);
    if (it != tasks_.end() && !it->second.durable) {
        counts_.remove(it->second.spec.pool(), it->second.counted);
        tasks_.erase(it);
    }
}

bool Scheduler::remove(int64_t id) {
    auto it = tasks_.find(id);
    if (it == tasks_.end() || !it->second.durable || !it->second.finished()) {
        return false;
    }
    outputs_.remove(id, it->second.spec.stage_argvs().size(), it->second.attempts);
    counts_.remove(it->second.spec.pool(), it->second.counted);
    tasks_.erase(it);
    return true;
}

void Scheduler::restore(Task task) {
    task.durable = true;
    task.spec.share_strings(strings_);
    set_next_id(task.id + 1);
    if (task.finished()) {
        task.spec.set_env(nullptr);  // only needed to run it
    } else {
        pool_for(task.spec.pool());  // pools of finished tasks only (a map's) do not come back
    }
    task.counted = {};
    auto [it, inserted] = tasks_.try_emplace(task.id);
    if (!inserted) {
        counts_.remove(it->second.spec.pool(), it->second.counted);
    }
    it->second = std::move(task);
    counts_.update(it->second.spec.pool(), it->second.counted, it->second.state, it->second.durable);
}

void Scheduler::resume() {
    int64_t now = common::now_unix_ms();
    for (auto& [id, t] : tasks_) {
        if (t.state == TaskState::running) {
            readopt(t, now);
        }
    }
    spawner_.adoptions_done();
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

const Task* Scheduler::find(int64_t id) const {
    auto it = tasks_.find(id);
    return it == tasks_.end() ? nullptr : &it->second;
}

const Task* Scheduler::find_durable(int64_t id) const {
    const Task* t = find(id);
    return t != nullptr && t->durable ? t : nullptr;
}

size_t Scheduler::unfinished_count() const {
    return counts_.in_state(TaskState::pending) + counts_.in_state(TaskState::running);
}

bool Scheduler::tasks_wait_for_slots() const {
    return std::any_of(pools_.begin(), pools_.end(), [](const auto& entry) {
        const Pool& pool = entry.second;
        return !pool.ready.empty() && pool.running >= pool.workers;
    });
}

void Scheduler::resolve_dependencies(Task& t) {
    t.unmet_deps = 0;
    for (int64_t dep_id : t.spec.after()) {
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
    if (t.unmet_deps == 0 || backend_may_hold(t)) {
        enqueue(t);
    }
}

bool Scheduler::backend_may_hold(const Task& t) const {
    if (t.unmet_deps == 0) {
        return false;
    }
    for (int64_t dep_id : t.spec.after()) {
        const Task* dep = find(dep_id);
        if (dep == nullptr || dep->state == TaskState::succeeded) {
            continue;
        }
        // Running (its job known), on its last attempt and not being stopped: its end is its outcome, so
        // the backend's "after it succeeds" is mpctl's.
        if (dep->state != TaskState::running || !dep->pid || dep->stopping != Task::Stop::none ||
            dep->attempts <= dep->spec.retries() ||
            !spawner_.holds(t.spec.pool(), dep->spec.pool(), *dep->pid)) {
            return false;
        }
    }
    return true;
}

void Scheduler::offer_dependants(const Task& dep) {
    for (int64_t id : dep.dependants) {
        Task* d = find(id);
        if (d != nullptr && d->state == TaskState::pending && d->durable && !d->queued &&
            backend_may_hold(*d)) {
            enqueue(*d);
            pump(pool_for(d->spec.pool()));
        }
    }
}

void Scheduler::finish(Task& t, TaskState state, FailReason reason) {
    t.state = state;
    t.reason = reason;
    if (state == TaskState::failed) {
        // Counted before the caller refills the slot (pump): a pool that halts now starts nothing more.
        if (auto pool = pools_.find(t.spec.pool()); pool != pools_.end()) {
            ++pool->second.failures;
        }
    }
    if (t.output_expected && t.attempts == 0) {
        outputs_.forget(t.id);
    }
    if (!t.finished_at_ms) {
        t.finished_at_ms = common::now_unix_ms();
    }
    timers_.cancel(t.retry_timer);
    t.retry_timer = 0;
    notify(t);
    t.spec.set_env(nullptr);  // only needed to run it; finished tasks stay in memory for queries
    t.passed_stdin.reset();   // the writer on the other end sees EPIPE once nobody can read any more
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
                if (d->unmet_deps > 0) {
                    --d->unmet_deps;
                }
                // One the backend holds is queued or running already; one that waits for others may be held
                // behind them from now on.
                if (d->durable && d->state == TaskState::pending && d->retry_timer == 0 &&
                    (d->unmet_deps == 0 || backend_may_hold(*d))) {
                    enqueue(*d);
                    pump(pool_for(d->spec.pool()));
                }
                continue;
            }
            std::string why =
                "dependency " + std::to_string(done->id) + " " + std::string(proto::to_string(done->state));
            if (d->state == TaskState::running) {
                // Handed to its backend, which holds it behind this one (and ends it too, Slurm's
                // kill-on-invalid-dep): stopped as a cancel is, it fails as a dependant does once it ended.
                d->error = std::move(why);
                begin_stop(*d, Task::Stop::dependency);
                continue;
            }
            dequeue(*d);
            d->state = TaskState::failed;
            d->reason = FailReason::dependency;
            d->finished_at_ms = common::now_unix_ms();
            d->error = std::move(why);
            timers_.cancel(d->retry_timer);
            d->retry_timer = 0;
            notify(*d);
            d->spec.set_env(nullptr);
            work.push_back(d->id);
        }
    }
}

void Scheduler::notify(Task& t) {
    counts_.update(t.spec.pool(), t.counted, t.state, t.durable);
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

}  // namespace mpctl::daemon
