// Scheduler: the tasks an earlier daemon left running. Their processes outlive it (the supervising parent
// inherits them), so a restarted daemon takes them back where it can and they end as if it had never been
// away: their status, their timeout at its original deadline, their retries, their dependants.

#include <mpctl/daemon/tasks/scheduler.hpp>

namespace mpctl::daemon {

std::optional<std::string> Scheduler::why_not_adoptable(const Task& t) {
    if (!t.pid) {
        return "its processes were still being started";
    }
    // A pipeline journals its first stage's pid only: the others could not be told from later processes.
    // (Re-adopting pipelines needs every stage's pid and start time journaled.)
    if (t.spec.stage_argvs().size() > 1) {
        return "a pipeline's stages are not re-adopted";
    }
    // Its cgroup was below the dead daemon's, which the next --cgroup task's start sweeps, killing it.
    if (t.spec.cgroup()) {
        return "a task in a cgroup of its own is not re-adopted";
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
        finish(t, TaskState::failed, FailReason::lost);
    };
    if (auto why = why_not_adoptable(t)) {
        return lost(*why);
    }
    // A warm pool's task ran on a worker, whose socket to the daemon closed with it: the spawner (the warm
    // one) refuses it, since the worker ended with that task.
    int64_t id = t.id;
    auto adopted =
        spawner_.adopt(*t.pid, t.pid_start, std::string(t.spec.pool()),
                       [this, id](size_t stage, ExitInfo info) { on_stage_exit(id, stage, info); });
    if (!adopted) {
        return lost(adopted.error().message());
    }
    // Running as journaled (attempt, started_at, pid): it holds its pool's slot again.
    Pool& pool = pool_for(t.spec.pool());
    ++pool.running;
    ++running_;
    running_ids_.insert(id);
    readopted_.push_back(id);
    t.stages.assign(1, Task::StageRun{*t.pid, false, std::nullopt, std::nullopt});
    t.stages_running = 1;
    t.stopping = Task::Stop::none;
    if (auto timeout = t.spec.timeout_s()) {
        // Its original deadline; one already past fires at once, SIGTERM and kill_after as ever.
        int64_t deadline_ms =
            t.started_at_ms.value_or(now_ms) + static_cast<int64_t>(*timeout * 1000.0 + 0.5);
        arm_timeout(t, std::chrono::milliseconds(std::max<int64_t>(deadline_ms - now_ms, 0)));
    }
}

}  // namespace mpctl::daemon
