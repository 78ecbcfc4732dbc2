#pragma once
// Scheduler: the state machine of every task, and the worker pools that run them.
//
// Owns the task table. Pools are created on first use; a ready task starts when its pool has a free slot,
// highest priority first, then first come first served. Dependencies (spec.after) hold a task until they all
// succeed; a dependency that fails, is cancelled or is lost fails its dependants with reason `dependency`.
// Failures by exit, signal or timeout are retried spec.retries times after spec.retry_delay_s. Timeouts and
// forced cancels signal the process group: SIGTERM, then SIGKILL after spec.kill_after_s.
//
// Talks to the world only through Spawner (processes), Timers (time) and its TaskListener (journal,
// futures, output retention, shutdown), so unit tests drive it without processes or clocks. It renders
// nothing: StatusView shows a task to clients. Loop thread only.
//
// The member functions live in four files, by concept: scheduler.cpp (submission, restore, dependencies,
// finishing), scheduler_runs.cpp (an attempt: start, exit, retry, stop, signals), scheduler_adoption.cpp
// (the tasks an earlier daemon left running) and scheduler_pools.cpp (pool sizes, transient pools,
// shutdown).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <mpctl/daemon/exec/output_files.hpp>
#include <mpctl/daemon/exec/spawner.hpp>
#include <mpctl/daemon/exec/task_cgroups.hpp>
#include <mpctl/daemon/tasks/env_blocks.hpp>
#include <mpctl/daemon/tasks/ready_queue.hpp>
#include <mpctl/daemon/tasks/task.hpp>
#include <mpctl/daemon/tasks/task_counts.hpp>
#include <mpctl/daemon/tasks/task_listener.hpp>
#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::daemon {

struct PoolInfo {
    std::string name;
    int workers = 0;
    int running = 0;
    int pending = 0;  // ready to run, waiting for a slot
    int waiting = 0;  // pending on dependencies or a retry delay
    bool transient = false;
    bool halted = false;  // halt_after_failures of its tasks failed: it starts nothing more
};

class Scheduler {
  public:
    struct Options {
        int default_workers = 1;
        std::map<std::string, int> pool_workers;  // sizes from the config file
        std::vector<std::string> daemon_env;      // for specs without env ("K=V")
        std::string default_cwd = "/";            // for specs without cwd
        uint64_t max_output = uint64_t{1} << 30;  // bytes kept per stream, for specs without max_output
    };

    Scheduler(Spawner& spawner, Timers& timers, OutputLayout& outputs, TaskListener& listener,
              Options options);

    // -- submission -----------------------------------------------------------------------------------
    // Ids are positive, increasing, never reused; the store seeds the counter at start-up.
    void set_next_id(int64_t next) { next_id_ = std::max(next_id_, next); }
    [[nodiscard]] int64_t next_id() const { return next_id_; }

    // Adds a pending task, invisible to clients and not run until its journal row is committed.
    Task& add(proto::TaskSpec spec, int64_t submitted_at_ms);
    // Its row is committed: clients may see it from now on.
    void make_durable(int64_t id);
    // Resolves its dependencies and queues it (once durable).
    void schedule(int64_t id);
    // Its row could not be committed: forget it (the client was told it failed).
    void discard(int64_t id);

    // Start-up: puts TASK (as journaled) back in the table. Call resume() once all are restored.
    void restore(Task task);
    // Re-adopts the tasks that were running when the daemon died (Spawner::adopt: they run on, or end with
    // the status recorded while no daemon watched), marks those it cannot as lost, and queues the pending
    // ones.
    void resume();

    // --cgroup containment; without it (unit tests, no cgroup v2) tasks asking for a cgroup fail to spawn.
    void set_cgroups(TaskCgroups* cgroups) { cgroups_ = cgroups; }

    // -- queries --------------------------------------------------------------------------------------
    [[nodiscard]] Task* find(int64_t id);
    [[nodiscard]] const Task* find(int64_t id) const;
    // A task a client may know about: its row is committed (null otherwise).
    [[nodiscard]] const Task* find_durable(int64_t id) const;
    [[nodiscard]] const std::map<int64_t, Task>& tasks() const { return tasks_; }
    [[nodiscard]] std::vector<PoolInfo> pools() const;
    [[nodiscard]] int pool_workers(const std::string& name) const;
    [[nodiscard]] size_t running_count() const { return running_; }
    // Whether some pool has ready tasks and every slot taken: the daemon has more work than it can start.
    [[nodiscard]] bool tasks_wait_for_slots() const;
    // The tasks this daemon re-adopted at its start (an earlier daemon, or image, left them running).
    [[nodiscard]] const std::vector<int64_t>& readopted() const { return readopted_; }
    [[nodiscard]] size_t unfinished_count() const;
    // Tasks clients can see, in STATE (kept as tasks change: no walk of the table).
    [[nodiscard]] size_t count(TaskState state) const { return counts_.in_state(state); }
    [[nodiscard]] const TaskCounts& counts() const { return counts_; }
    // Where POOL's tasks run (Spawner::backend).
    [[nodiscard]] std::string backend(const std::string& pool) const { return spawner_.backend(pool); }
    // The running tasks' ids, in id order.
    [[nodiscard]] const std::set<int64_t>& running_ids() const { return running_ids_; }
    // Bytes of each output stream kept for TASK.
    [[nodiscard]] uint64_t max_output(const Task& task) const {
        return task.spec.max_output().value_or(options_.max_output);
    }
    // Cuts the output files of running tasks back to their max_output (see tasks/output_limits.hpp).
    void enforce_output_limits();

    // -- control --------------------------------------------------------------------------------------
    enum class CancelResult { cancelled, terminating, running, already_finished };
    CancelResult cancel(int64_t id, bool force);
    // Sends SIGNO to a running task's process group; false if it is not running.
    bool signal(int64_t id, int signo);
    // Forgets a finished task whose journal row is gone (`mpctl remove`, `clean`); its output files are
    // deleted in the background. False (and nothing done) if it is not a finished task.
    bool remove(int64_t id);
    // The client an attached task belongs to went away: as a shell's job when its terminal hangs up, a
    // pending task is cancelled and a running one gets SIGHUP (its process group; nothing more if it
    // ignores it), and is not retried.
    void hang_up(int64_t id);
    // Task ID belongs to a client's connection from now on (task.attach): false when it has finished.
    bool attach(int64_t id);
    // Runs FN once none of IDS is starting any more (its processes being spawned): at once if none is.
    void after_starts(const std::vector<int64_t>& ids, std::function<void()> fn);
    // TRANSIENT: a pool for one client (a map), not remembered: once its owner is gone
    // (release_transient_pool) its pending tasks are cancelled, and it is dropped when its running ones
    // are done.
    // Why pool NAME cannot be deleted now (the default pool, one with unfinished tasks, a transient one
    // still owned), or nullopt; delete_pool then forgets it (its size too).
    [[nodiscard]] std::optional<std::string> why_not_delete_pool(const std::string& name) const;
    void delete_pool(const std::string& name);
    // HALT_AFTER_FAILURES (transient pools; 0: never): once that many of its tasks have failed, the pool
    // starts nothing more, not even in the slot the last failure freed (`mpctl map --halt`, as GNU
    // parallel, which starts no job after the one that halts it).
    void set_pool_workers(const std::string& name, int workers, bool transient = false,
                          int halt_after_failures = 0);
    void release_transient_pool(const std::string& name);
    // The daemon is stopping: the pending tasks of transient pools are cancelled, since no connection,
    // hence no owner, survives the daemon (other pools' pending tasks wait for the next start).
    void cancel_transient_pending();
    // At start, before resume(): NAME was a transient pool of a daemon that died; its owner is gone, so
    // resume() cancels its pending tasks, and the pool goes with its last task.
    void orphan_restored_pool(const std::string& name);

    // -- shutdown -------------------------------------------------------------------------------------
    // What a daemon stop asks of the tasks. The first time: no task starts from now on, and the pending
    // tasks of transient pools and the pending attached tasks are cancelled (no client will be there for
    // them when the daemon comes back). Each time: CANCEL_PENDING cancels the other pending tasks,
    // TERMINATE ends the running ones (as cancelled) with KILL_AFTER_S of grace (each task's own when
    // nullopt). True when this call began the stop.
    bool stop(bool cancel_pending, bool terminate, std::optional<double> kill_after_s);
    // The pieces of stop().
    void stop_starting();  // no task starts from now on
    [[nodiscard]] bool starting_stopped() const { return !starting_; }
    void terminate_running(std::optional<double> kill_after_s);  // they end as cancelled
    void cancel_pending();

  private:
    struct Pool {
        std::string name;
        int workers = 1;
        int running = 0;
        ReadyQueue ready;  // highest priority first, then FIFO
        bool transient = false;
        bool owner_gone = false;
        int halt_after_failures = 0;  // 0: never
        int failures = 0;             // its tasks that failed (after their retries)
        [[nodiscard]] bool halted() const {
            return halt_after_failures > 0 && failures >= halt_after_failures;
        }
    };

    // scheduler.cpp
    void finish(Task& task, TaskState state, FailReason reason);
    void resolve_dependencies(Task& task);
    void release_dependants(const Task& task);
    // Whether TASK, whose dependencies have not all succeeded, may start anyway, its backend holding it
    // until they do (Spawner::holds): each one left runs in such a backend, on its last attempt.
    [[nodiscard]] bool backend_may_hold(const Task& task) const;
    // DEP's processes (its job) exist now: its dependants that its backend may hold are queued.
    void offer_dependants(const Task& dep);
    // Every change of a task's state or durability goes through here (or add, discard and restore): it
    // keeps the counts, then tells the listener (durable tasks only: the others were never journaled).
    void notify(Task& task);

    // scheduler_adoption.cpp
    // TASK was running when the daemon died (journaled at NOW_MS): re-adopted, or failed as lost.
    void readopt(Task& task, int64_t now_ms);
    // Why TASK's processes cannot be re-adopted, before the spawner is asked; nullopt if they may be.
    [[nodiscard]] static std::optional<std::string> why_not_adoptable(const Task& task);

    // scheduler_runs.cpp
    void start(Task& task, Pool& pool);
    // The timeout of the running TASK fires after DELAY (through begin_stop, as any timeout).
    void arm_timeout(Task& task, std::chrono::milliseconds delay);
    [[nodiscard]] common::Result<SpawnSpec> prepare_spawn(Task& task);
    [[nodiscard]] SpawnSpec spawn_spec(const Task& task);
    // The spawner's answer for attempt ATTEMPT of task ID.
    void on_started(int64_t id, int attempt, common::Result<std::vector<int>> pids);
    void started(int64_t id, int attempt, common::Result<std::vector<int>> pids);
    void release_start_waiters(int64_t id);
    // The backend says attempt ATTEMPT of task ID really began at AT_MS (SpawnSpec::on_began).
    void began(int64_t id, int attempt, int64_t at_ms);
    void start_failed(Task& task, const common::Error& why);
    void on_stage_exit(int64_t id, size_t stage, ExitInfo info);
    void on_exit(int64_t id, ExitInfo info);
    void retry_later(Task& task, FailReason reason);
    void begin_stop(Task& task, Task::Stop why, std::optional<double> kill_after_s = std::nullopt);
    void kill_now(Task& task);  // SIGKILL to its group (and cgroup)
    void kill_now(int64_t id, int pgid, bool cgroup);
    // The open cgroup.procs of the task's own cgroup if it asked for one (else an empty fd).
    [[nodiscard]] common::Result<common::UniqueFd> cgroup_for(const Task& task);

    // scheduler_pools.cpp
    Pool& pool_for(const std::string& name);
    void enqueue(Task& task);
    void dequeue(Task& task);
    void pump(Pool& pool);
    void pump_all();
    void drop_if_idle(const std::string& name);
    // Cancels the pending tasks of POOL (all pools if null) with error WHY.
    // Cancels the pending tasks of POOL (every pool if null), only the attached ones if ATTACHED_ONLY.
    void cancel_pending_in(const std::string* pool, const std::string& why, bool attached_only = false);
    enum class Orphaned { owner_left, daemon_stopped, daemon_restarted };
    // Cancels the pending tasks of every transient pool, saying WHY; returns those pools' names.
    std::vector<std::string> cancel_transient_queues(Orphaned why);
    static std::string orphan_error(const std::string& pool, Orphaned why);

    Spawner& spawner_;
    Timers& timers_;
    OutputLayout& outputs_;
    TaskListener& listener_;
    Options options_;
    EnvBlocks env_blocks_;
    SharedStrings strings_;  // the tasks' cwds and pools; before the table, which holds them
    std::map<int64_t, Task> tasks_;
    std::map<std::string, Pool> pools_;
    int64_t next_id_ = 1;
    uint64_t enqueue_seq_ = 0;
    size_t running_ = 0;
    std::set<int64_t> running_ids_;
    std::vector<int64_t> readopted_;  // readopted(): in the order they were taken back
    TaskCounts counts_;
    TaskCgroups* cgroups_ = nullptr;
    bool starting_ = true;
    bool in_start_ = false;  // inside start()'s call of the spawner
    struct StartWaiter {
        size_t remaining = 0;
        std::function<void()> fn;
    };
    std::multimap<int64_t, std::shared_ptr<StartWaiter>> start_waiters_;  // by the starting task's id
    // The grace period of a stop asked for while the task was starting, when it was not its own.
    std::map<int64_t, std::optional<double>> stop_grace_on_start_;
};

}  // namespace mpctl::daemon
