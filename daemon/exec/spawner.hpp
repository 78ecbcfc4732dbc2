#pragma once
// The seam between the scheduler and real processes (ninja's CommandRunner idea): the daemon uses
// ProcessSpawner; unit tests drive the scheduler with a fake that "exits" processes on command.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

// A complete environment ready for exec: the "K=V" strings and the null-terminated array over them.
// Immutable, so many tasks share one (everything submitted from one shell has the same environment) and
// nothing is rebuilt per spawn.
class EnvBlock {
  public:
    explicit EnvBlock(std::vector<std::string> entries);
    EnvBlock(const EnvBlock&) = delete;
    EnvBlock& operator=(const EnvBlock&) = delete;

    [[nodiscard]] const std::vector<std::string>& entries() const noexcept { return entries_; }
    [[nodiscard]] char* const* envp() const noexcept { return envp_.data(); }
    // PATH's value, or what execvp uses when PATH is unset.
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

  private:
    std::vector<std::string> entries_;
    std::vector<char*> envp_;
    std::string path_;
};

// One process of a task: a plain task has one stage, a pipeline one per command.
struct SpawnStage {
    std::vector<std::string> argv;  // argv[0] is looked up in env's PATH unless it contains '/'
    std::string stderr_path;        // opened (created or truncated) unless stderr_fd is given
    common::UniqueFd stderr_fd;     // becomes the stage's fd 2, then is closed here
};

// Everything needed to start a task's processes. Paths are absolute. The stages run in one process group
// (the first stage's), each one's stdout connected to the next one's stdin by a pipe that the daemon only
// creates: the data never passes through it.
struct SpawnSpec {
    std::vector<SpawnStage> stages;
    std::string cwd;
    std::shared_ptr<const EnvBlock> env;    // the complete environment
    std::optional<std::string> stdin_path;  // the first stage's stdin; nullopt (and no stdin_fd): /dev/null
    common::UniqueFd stdin_fd;              // a descriptor the client passed, instead of a path
    // The spec's input: bytes the first stage reads as its stdin (neither stdin_fd nor stdin_path is set).
    // The backend makes them a stdin: a memory file for a process; in the run itself for a warm worker that
    // takes them there, which spares the daemon a memory file, its write and its seek for every call.
    std::optional<std::string> input;
    std::string stdout_path;  // the last stage's stdout, opened unless stdout_fd is given
    common::UniqueFd stdout_fd;
    std::optional<int> nice;
    std::optional<unsigned> umask;
    std::vector<std::pair<int, uint64_t>> rlimits;  // RLIMIT_* -> soft and hard limit
    common::UniqueFd cgroup_procs_fd;               // a cgroup.procs every stage moves itself into
    common::UniqueFd channel_fd;                    // the first stage's descriptor 3 (a warm worker's socket)
    std::string pool;                               // the task's pool (a warm pool runs it on a worker)
    int64_t task = 0;                               // the task's id and attempt, for a warm worker
    int attempt = 0;
    std::string name;                   // the task's name, if it has one (a Slurm job's name)
    std::optional<int64_t> timeout_ms;  // its timeout (a Slurm job's --time; the scheduler enforces it)
    std::optional<int> cpus, gpus;      // what a Slurm job asks of its node (local spawners ignore them)
    std::optional<uint64_t> mem;        // bytes
    std::optional<int> array_throttle;  // a Slurm job array's %N
    // The tasks it follows, held by the backend (Spawner::holds): the running processes (their first pids)
    // that must all exit 0 before it begins; the backend ends it if one does not. Empty for a local task.
    std::vector<int> after;
    // Where a start is only a submission (a Slurm job waits in its queue, or for AFTER), the moment it
    // really began, Unix ms: at most once, on the loop. Local spawners never call it (a process began at
    // its start).
    std::function<void(int64_t began_at_ms)> on_began;
};

// How a process ended: exactly one of exit_code and signal is set, unless unknown.
struct ExitInfo {
    std::optional<int> exit_code;
    std::optional<int> signal;
    std::string note;      // for the task's error, what the status alone does not say (a warm worker's end)
    bool unknown = false;  // an adopted process whose status no source recorded: neither is set
    // When it ended, where that is known better than "when its end was seen" (a Slurm job's status file,
    // which a restarted daemon may read long after): the task's finished_at. Unix ms.
    std::optional<int64_t> ended_at_ms = std::nullopt;
    // What a warm worker returned with the task's end (its done's "result": base64 text), if anything.
    std::optional<std::string> result = std::nullopt;
};

// A spawn that failed reports an Error whose context is the whole message ("command not found: x", "cwd
// /nope: No such file or directory"), prefixed with the stage at fault in a pipeline ("stage 1: ..."); its
// code is not_found for a command that is not there. Whatever stages had started were killed.
//
// The exit code a shell would report for it: 127 not found, 1 a stdin that cannot be opened, 126 anything
// else.
[[nodiscard]] inline int spawn_exit_code(const common::Error& e) {
    switch (e.code) {
        case common::Errc::not_found:
            return 127;
        case common::Errc::redirection:
            return 1;  // `cmd < missing` in a shell: the command never runs, the status is 1
        default:
            return 126;
    }
}

class Spawner {
  public:
    using OnExit = std::function<void(size_t stage, ExitInfo)>;
    // The outcome of a spawn: the stages' pids in stage order (the first is the group's id), or why nothing
    // runs.
    using OnStarted = std::function<void(common::Result<std::vector<int>>)>;
    virtual ~Spawner() = default;

    // Starts SPEC's stages in one new process group. ON_STARTED runs once, on the daemon's loop, when they
    // have been started or have failed to; it may run before spawn() returns. The daemon's spawner does the
    // clone and waits for the exec on a thread of its own, so the loop answers clients meanwhile. After a
    // successful start, ON_EXIT runs once per stage, on the loop, after it has been reaped.
    virtual void spawn(SpawnSpec spec, OnStarted on_started, OnExit on_exit) = 0;

    // Sends SIGNO to the process group PGID. Quietly ignores a group that is already gone.
    virtual void signal_group(int pgid, int signo) = 0;

    // Whether any process is left in group PGID (after its leader exited, background children may remain).
    [[nodiscard]] virtual bool group_alive(int pgid) = 0;

    // -- re-adoption after a restart (Scheduler::resume) ---------------------------------------------------
    // When the first process of a spawn (PID, one this spawner started and has not reaped) was started, in
    // /proc/PID/stat's clock ticks (boottime_ticks_now() read just before its clone), for the journal; 0 if
    // unknown. The default knows none: such tasks cannot be re-adopted by a later daemon.
    [[nodiscard]] virtual uint64_t start_ticks([[maybe_unused]] int pid) const { return 0; }

    // Watches process PID, which an earlier daemon started at START_TICKS (as start_ticks() said) for a task
    // of POOL, as if this spawner had started it: ON_EXIT runs once (stage 0), on the loop and never before
    // adopt() returns, with its exact status, or with ExitInfo::unknown when no source recorded it. A process
    // that ended while no daemon watched counts too, if its end was recorded. The error says why it cannot
    // be adopted (its pid is another process now, it is gone without a record, ...). The default refuses.
    [[nodiscard]] virtual common::Result<void> adopt([[maybe_unused]] int pid,
                                                     [[maybe_unused]] uint64_t start_ticks,
                                                     [[maybe_unused]] const std::string& pool,
                                                     [[maybe_unused]] OnExit on_exit) {
        return common::plain_error("this daemon cannot re-adopt processes");
    }
    // For a task adopted as PID whose backend tells when it began (SpawnSpec::on_began; a Slurm job that
    // may still be pending): ON_BEGAN runs once, on the loop, at once if it began already, and true is
    // returned. False (ON_BEGAN dropped): it began at its start, as a process does.
    [[nodiscard]] virtual bool when_began(int pid, std::function<void(int64_t began_at_ms)> on_began) {
        (void)pid;
        (void)on_began;
        return false;
    }
    // Resume has asked for every adoption it will: what only adoptions could need may go once they are over.
    virtual void adoptions_done() {}

    // Where POOL's tasks run: "local" (processes of this machine) or another backend's name ("slurm"),
    // whose tasks have no pid here and whose start may take long (a submission): queries show such a task
    // as it is rather than wait for its start.
    [[nodiscard]] virtual std::string backend(const std::string& pool) const {
        (void)pool;
        return "local";
    }

    // Whether a task of POOL may be handed over while DEP_PID, the running task of DEP_POOL that it depends
    // on, has not ended, the backend holding it until that one succeeds (SpawnSpec::after): Slurm's afterok.
    // The scheduler asks only about a dependency on its last attempt (no retry would follow its failure).
    [[nodiscard]] virtual bool holds(const std::string& pool, const std::string& dep_pool,
                                     int dep_pid) const {
        (void)pool;
        (void)dep_pool;
        (void)dep_pid;
        return false;
    }
};

}  // namespace mpctl::daemon
