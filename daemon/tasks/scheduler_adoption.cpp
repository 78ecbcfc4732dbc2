// Scheduler: the tasks an earlier daemon left running. Their processes outlive it (the supervising parent
// inherits them), so a restarted daemon takes them back where it can and they end as if it had never been
// away: their status, their timeout at its original deadline, their retries, their dependants.

#include <mpctl/daemon/tasks/scheduler.hpp>

namespace mpctl::daemon {

namespace {

bool is_pipeline(const Task& t) {
    return t.spec.stage_argvs().size() > 1;
}

}  // namespace

std::optional<std::string> Scheduler::why_not_adoptable(const Task& t) {
    if (!t.pid) {
        return "its processes were still being started";
    }
    if (is_pipeline(t)) {
        // Each stage's pid and start time (and the status of each that had ended) are in its outcome column.
        if (t.stages.size() != t.spec.stage_argvs().size()) {
            return "its stages' processes were not journaled";
        }
        for (const auto& s : t.stages) {
            if (!s.exited && (s.pid <= 0 || s.start == 0)) {
                return "a stage was journaled without its process's start time";
            }
        }
        return std::nullopt;
    }
    if (t.pid_start == 0) {
        return "it was journaled without its process's start time (by an older mpctld), which is what tells "
               "its process from a later one with the same pid";
    }
    return std::nullopt;
}

void Scheduler::readopt(Task& t, int64_t now_ms) {
    auto lost = [&](const std::string& why) {
        t.pid.reset();
        t.pid_start = 0;
        t.finished_at_ms = now_ms;
        t.error = "the daemon stopped while the task ran; its outcome is unknown (" + why + ")";
        if (t.spec.cgroup() && cgroups_ != nullptr) {
            cgroups_->release(t.id);  // a cgroup taken over: nothing of the task outlives it
        }
        finish(t, TaskState::failed, FailReason::lost);
    };
    if (auto why = why_not_adoptable(t)) {
        return lost(*why);
    }
    if (t.spec.cgroup()) {
        // Its cgroup is below the dead daemon's root: taken over, so that the sweep of dead daemons'
        // cgroups spares it and its end still kills whatever it left there.
        auto taken = cgroups_ != nullptr
                         ? cgroups_->adopt(t.id, *t.pid)
                         : common::Result<void>(common::plain_error("this daemon has no task cgroups"));
        if (!taken) {
            return lost("its cgroup: " + taken.error().message());
        }
    }
    // A warm pool's task ran on a worker, whose socket to the daemon closed with it: the spawner (the warm
    // one) refuses it, since the worker ended with that task. A plain task is its one process; a pipeline's
    // stages are taken back one by one, those that had ended before the crash as the journal says.
    int64_t id = t.id;
    if (!is_pipeline(t)) {
        t.stages.assign(1, Task::StageRun{*t.pid, false, std::nullopt, std::nullopt, t.pid_start});
    }
    uint32_t running = 0;
    std::optional<std::string> refused;  // why the first stage that could not be taken back was not
    for (size_t stage = 0; stage < t.stages.size(); ++stage) {
        Task::StageRun& s = t.stages[stage];
        if (s.exited) {
            continue;
        }
        auto adopted =
            spawner_.adopt(s.pid, s.start, std::string(t.spec.pool()),
                           [this, id, stage](size_t, ExitInfo info) { on_stage_exit(id, stage, info); });
        if (adopted) {
            ++running;
        } else {
            // The others are taken back all the same: the pipeline ends, as unknown, once they have.
            s.exited = true;
            s.unknown = true;
            refused = refused.value_or(adopted.error().message());
        }
    }
    if (running == 0) {
        return lost(refused.value_or("none of its processes was left"));
    }
    // Running as journaled (attempt, started_at, pid): it holds its pool's slot again.
    Pool& pool = pool_for(t.spec.pool());
    ++pool.running;
    ++running_;
    running_ids_.insert(id);
    readopted_.push_back(id);
    t.stages_running = running;
    t.stopping = Task::Stop::none;
    if (auto timeout = t.spec.timeout_s()) {
        // A job its backend may still hold (pending in Slurm's queue, or behind its dependencies): its time
        // counts from when it begins, which began() is told.
        int attempt = t.attempts;
        if (spawner_.when_began(*t.pid, [this, id, attempt](int64_t at_ms) { began(id, attempt, at_ms); })) {
            return;
        }
        // Its original deadline; one already past fires at once, SIGTERM and kill_after as ever.
        int64_t deadline_ms =
            t.started_at_ms.value_or(now_ms) + static_cast<int64_t>(*timeout * 1000.0 + 0.5);
        arm_timeout(t, std::chrono::milliseconds(std::max<int64_t>(deadline_ms - now_ms, 0)));
    }
}

}  // namespace mpctl::daemon
