#pragma once
// Task: the daemon's record of one future, owned by the Scheduler's table. Loop thread only.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/tasks/compact_spec.hpp>
#include <mpctl/daemon/tasks/task_counts.hpp>
#include <mpctl/daemon/tasks/timers.hpp>
#include <mpctl/proto/task_status.hpp>

namespace mpctl::daemon {

using proto::FailReason;
using proto::TaskState;

struct Task {
    // The fields are ordered by size, largest first: with a long queue every padding byte counts a
    // hundred thousand times.
    int64_t id = 0;
    CompactSpec spec;
    int64_t submitted_at_ms = 0;
    std::optional<int64_t> started_at_ms;
    std::optional<int64_t> finished_at_ms;
    std::optional<std::string> error;
    int64_t env_id = 0;  // its environment in the journal (0: the daemon's own)
    // When its process (the first stage's) started, in /proc/PID/stat's ticks since boot (Spawner::
    // start_ticks), journaled with pid: what lets a restarted daemon re-adopt it. 0: unknown.
    uint64_t pid_start = 0;

    // Scheduling state, never journaled.
    uint64_t queue_seq = 0;  // its place in its pool's ready queue
    std::vector<int64_t> dependants;
    // The processes of the current attempt, in stage order (one for a plain task); the first is the group.
    struct StageRun {
        int pid = 0;
        bool exited = false;
        std::optional<int> exit_code;
        std::optional<int> signal;
        uint64_t start = 0;    // as pid_start, for each stage: journaled for a pipeline's, to re-adopt it
        bool unknown = false;  // exited, an adopted process whose status no source recorded
    };
    std::vector<StageRun> stages;
    // A stdin the client passed (SCM_RIGHTS): each attempt gets a duplicate. Not journaled: after a
    // restart the task cannot run again.
    std::shared_ptr<common::UniqueFd> passed_stdin;
    TimerId timeout_timer = 0;
    TimerId kill_timer = 0;
    TimerId retry_timer = 0;

    std::optional<int> exit_code;
    std::optional<int> signal;
    std::optional<int> pid;
    int attempts = 0;
    uint32_t unmet_deps = 0;      // dependencies not yet succeeded
    uint32_t stages_running = 0;  // processes of this attempt not yet exited
    TaskState state = TaskState::pending;
    FailReason reason = FailReason::none;
    // Why we stop it. hangup: its client went away (attached), SIGHUP and nothing more, as a terminal's.
    // dependency: a dependency the backend held it behind failed (error says which).
    enum class Stop : uint8_t { none, timeout, cancel, shutdown, hangup, dependency } stopping = Stop::none;
    uint8_t signal_on_start = 0;        // a signal sent while its processes were starting (no pid yet)
    bool durable = false;               // its row is committed; only durable tasks run
    bool queued = false;                // in its pool's ready queue
    bool output_expected = false;       // its output files are being prepared ahead
    bool truncated = false;             // some output went past max_output (this attempt)
    std::optional<std::string> result;  // what its warm worker returned at this attempt's end (base64)
    bool attached = false;              // belongs to its client's connection (task.submit's attached)
    // Its backend tells when this attempt begins (SpawnSpec::on_began: a Slurm job waits in Slurm's queue,
    // or behind its dependencies): its timeout counts from then, not from its start.
    bool begins_later = false;
    TaskCounts::Mark counted;  // what the scheduler's counts hold it as

    [[nodiscard]] bool finished() const { return proto::is_finished(state); }
    // Running, with its processes still being started by the spawn thread: no pid yet. What is asked of it
    // meanwhile (a signal, a forced cancel, a daemon stop) is done as soon as they exist.
    [[nodiscard]] bool starting() const { return state == TaskState::running && !pid; }
};

}  // namespace mpctl::daemon
