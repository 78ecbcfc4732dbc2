// Scheduler: the worker pools (sizes, ready queues, the transient pools of maps) and shutdown.

#include <mpctl/daemon/tasks/scheduler.hpp>

namespace mpctl::daemon {

namespace {
// How many queued tasks per pool get their output files prepared before they start.
constexpr size_t k_output_lookahead = 8;
}  // namespace

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

void Scheduler::enqueue(Task& t) {
    if (t.queued) {
        return;
    }
    Pool& pool = pool_for(t.spec.pool());
    t.queue_seq = enqueue_seq_++;
    pool.ready.push(t.spec.priority(), t.queue_seq, t.id);
    t.queued = true;
}

void Scheduler::dequeue(Task& t) {
    if (!t.queued) {
        return;
    }
    pool_for(t.spec.pool()).ready.erase(t.spec.priority(), t.queue_seq);
    t.queued = false;
}

void Scheduler::pump(Pool& pool) {
    while (starting_ && !pool.halted() && pool.running < pool.workers && !pool.ready.empty()) {
        Task* t = find(pool.ready.pop().value_or(0));
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
    pool.ready.visit([&](int64_t id) {
        Task* t = find(id);
        if (t != nullptr && !t->output_expected && t->attempts == 0) {
            t->output_expected = true;
            outputs_.expect(t->id);
        }
        return ++ahead < k_output_lookahead;
    });
}

void Scheduler::pump_all() {
    for (auto& [name, pool] : pools_) {
        pump(pool);
    }
}

void Scheduler::set_pool_workers(const std::string& name, int workers, bool transient,
                                 int halt_after_failures) {
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
    pool.halt_after_failures = pool.transient ? halt_after_failures : 0;
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

void Scheduler::cancel_pending_in(const std::string* pool, const std::string& why, bool attached_only) {
    // Newest first: dependants always have higher ids than their dependencies, so each is cancelled
    // before a cancelled dependency could fail it with reason `dependency`. A task whose submit is still
    // being committed is not durable yet: schedule() sees to it.
    std::vector<int64_t> ids;
    for (auto it = tasks_.rbegin(); it != tasks_.rend(); ++it) {
        const Task& t = it->second;
        if (t.state == TaskState::pending && t.durable && (pool == nullptr || t.spec.pool() == *pool) &&
            (!attached_only || t.attached)) {
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

std::optional<std::string> Scheduler::why_not_delete_pool(const std::string& name) const {
    if (name == proto::k_default_pool) {
        return "the default pool cannot be deleted";
    }
    auto it = pools_.find(name);
    if (it == pools_.end()) {
        return "no pool " + name;
    }
    if (it->second.transient && !it->second.owner_gone) {
        return "pool " + name + " belongs to a running map";
    }
    if (size_t n = counts_.unfinished(name); n > 0) {
        return "pool " + name + " has " + std::to_string(n) + " unfinished task" + (n == 1 ? "" : "s") +
               " (cancel them first)";
    }
    return std::nullopt;
}

void Scheduler::delete_pool(const std::string& name) {
    if (why_not_delete_pool(name)) {
        return;
    }
    pools_.erase(name);
    options_.pool_workers.erase(name);
}

void Scheduler::drop_if_idle(const std::string& name) {
    auto it = pools_.find(name);
    if (it == pools_.end() || !it->second.transient || !it->second.owner_gone || it->second.running > 0 ||
        !it->second.ready.empty()) {
        return;
    }
    // Tasks waiting on dependencies or a retry are in no queue, and a submit may be being committed.
    if (counts_.unfinished(name) > 0) {
        return;
    }
    pools_.erase(it);
    listener_.transient_pool_dropped(name);
}

std::vector<PoolInfo> Scheduler::pools() const {
    // Pending tasks are either queued (ready for a slot) or waiting (on dependencies, a retry delay).
    std::vector<PoolInfo> out;
    out.reserve(pools_.size());
    for (const auto& [name, pool] : pools_) {
        size_t queued = pool.ready.size();
        size_t pending = counts_.pending(name);
        out.push_back(PoolInfo{name, pool.workers, pool.running, static_cast<int>(queued),
                               static_cast<int>(pending > queued ? pending - queued : 0), pool.transient,
                               pool.halted()});
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

bool Scheduler::stop(bool cancel_pending_too, bool terminate, std::optional<double> kill_after_s) {
    bool first = starting_;
    if (first) {
        cancel_transient_pending();
        cancel_pending_in(nullptr, "cancelled by daemon shutdown: its client will not be there", true);
        stop_starting();
    }
    if (cancel_pending_too) {
        cancel_pending();
    }
    if (terminate) {
        terminate_running(kill_after_s);
    }
    return first;
}

void Scheduler::stop_starting() {
    starting_ = false;
}

void Scheduler::terminate_running(std::optional<double> kill_after_s) {
    for (int64_t id : std::vector<int64_t>(running_ids_.begin(), running_ids_.end())) {
        if (Task* t = find(id); t != nullptr && t->state == TaskState::running) {
            begin_stop(*t, Task::Stop::shutdown, kill_after_s);
        }
    }
}

void Scheduler::cancel_pending() {
    cancel_pending_in(nullptr, "cancelled by daemon shutdown");
}

}  // namespace mpctl::daemon
