#pragma once
// DaemonWorld: mpctld's command side, in-process, for fuzz_params. Built the way Daemon builds itself
// (the same Scheduler, Store, FutureTable, LogStreamer, Registry and every command family), with what a
// fuzzer cannot have replaced: processes by FuzzSpawner, the scheduler's clock by ManualTimers, the state
// dir by a temporary directory, and the daemon's own stop by one that stops the tasks but not the loop.
//
// A request is exchanged on a connection of its own: a socket pair whose one end is a real Session, so
// that the line goes through the framer, the parser and the Registry as a client's does. The world starts
// with tasks in every state (first_task_id() and on, see populate()) and something in every table of the
// other families (a held lock and semaphore, a set event, queues, a dict, a token, segments); a request
// that changes that state marks the world as changed, and the harness builds a fresh one, so that every
// input meets the same daemon and a crash reproduces from its input alone.
//
// The sync and shm families work on files of the machine (lock files are created where a request says,
// segments are files of /dev/shm that any request may write or unlink): confine() moves what a fuzzed
// request names into the world's own (a lock directory in the state dir, a segment-name prefix of this
// process), so that a fuzzer never touches a file that is not its own. Loop thread only (the test's
// thread).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <mpctl/daemon/commands/daemon_control.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/exec/output_files.hpp>
#include <mpctl/daemon/exec/task_cgroups.hpp>
#include <mpctl/daemon/leases/lease_registry.hpp>
#include <mpctl/daemon/logs/log_streamer.hpp>
#include <mpctl/daemon/manager/kv_table.hpp>
#include <mpctl/daemon/manager/queue_table.hpp>
#include <mpctl/daemon/manager/value_budget.hpp>
#include <mpctl/daemon/remote/token_table.hpp>
#include <mpctl/daemon/shm/segment_registry.hpp>
#include <mpctl/daemon/slurm/slurm_spawner.hpp>
#include <mpctl/daemon/store/store.hpp>
#include <mpctl/daemon/sync/barrier_table.hpp>
#include <mpctl/daemon/sync/event_table.hpp>
#include <mpctl/daemon/sync/lock_table.hpp>
#include <mpctl/daemon/tasks/environments.hpp>
#include <mpctl/daemon/tasks/future_table.hpp>
#include <mpctl/daemon/tasks/output_limits.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>
#include <mpctl/daemon/tasks/status_view.hpp>
#include <mpctl/daemon/tasks/task_events.hpp>
#include <mpctl/daemon/warm/warm_spawner.hpp>

#include "fuzz_spawner.hpp"
#include "manual_timers.hpp"
#include "temp_dir.hpp"

namespace mpctl::fuzz {

class DaemonWorld final : public daemon::DaemonControl, public daemon::TaskListener {
  public:
    // CGROUPS is shared by every world: it only reads where the daemon's cgroup is (the scheduler is given
    // none, so nothing is ever created in it).
    explicit DaemonWorld(const daemon::TaskCgroups& cgroups);
    ~DaemonWorld() override;
    DaemonWorld(const DaemonWorld&) = delete;
    DaemonWorld& operator=(const DaemonWorld&) = delete;

    struct Exchange {
        std::string received;  // every byte the daemon sent on the connection, in order
        // False if the answer may still be owed: the tasks could not all be played out, or the request
        // waits for what only another client does (a lock's release, a put, a set; a kv.watch streams).
        bool settled = true;
        // What the connection left behind once closed: parked waits, log followers, the session itself.
        size_t watches_left = 0;
        size_t followers_left = 0;
        bool session_left = false;
        // Something still refers to the closed connection (its session's memory is not freed: a parked
        // request's Responder or a lease of the connection outlived it). Seen only under ASan.
        bool session_referred = false;
        // Waits parked in the sync and manager tables (lock and semaphore waiters, event and barrier
        // waiters, queue gets and puts): the world has none, so a closed connection must leave none.
        size_t client_waits_left = 0;
        // Holdings leased to a connection (all connections are closed by now), and leases that no holding
        // or wait accounts for (every lease is a lock's or a semaphore's holder or waiter, or a segment's).
        size_t connection_leases_left = 0;
        size_t stray_leases = 0;
        size_t open_fds = 0;  // the process's (see open_fds()), once the connection is closed
    };
    // Sends LINE (without its '\n') on a new connection, with PASSED_FDS descriptors of /dev/null (for
    // stdin_fd), lets the daemon answer now or, if it parks the request, once every task has run to its
    // end (a wait of the sync and manager families: once its own timers, its timeout or its lease's ttl,
    // have run out, if it has any), then closes the connection.
    Exchange exchange(std::string_view line, size_t passed_fds = 0);

    // PARAMS (JSON text) of METHOD, with the lock file (lock.*: params.path) or the segment (shm.*:
    // params.name) it names moved into the world's: under lock_dir() (a path made lexically normal first,
    // so that none leads out), or behind shm_prefix(). Names and paths the daemon refuses anyway are left
    // as they are, and so is the text of any other request; nullopt if a lock.* or shm.* request's params
    // cannot be read here (not one JSON object), which then cannot be sent safely.
    [[nodiscard]] std::optional<std::string> confine(std::string_view method, std::string_view params) const;
    [[nodiscard]] const std::string& lock_dir() const { return lock_dir_; }
    // The segment names of this process's worlds begin with it ("mpctl-fuzz.PID."); a world unlinks them
    // all when it goes.
    [[nodiscard]] static std::string shm_prefix();

    // Whether a request changed the state the world was built with (a task, a pool, a stop, a holding or
    // a lease, an event or a barrier, a queue, a dict, a token, a segment or its bytes).
    [[nodiscard]] bool changed() const;
    // The process's open descriptors (but the journal's) once the world was built: a request that changed
    // nothing must leave as many, and a new world must open as many as the first did.
    [[nodiscard]] size_t open_fds_at_start() const { return open_fds_at_start_; }
    [[nodiscard]] static size_t open_fds();

    [[nodiscard]] std::vector<std::string> methods() const { return registry_.methods(); }

    // DaemonControl: the scheduler's part of a stop (Daemon::request_stop), answered once no task runs;
    // the loop goes on.
    void request_stop(daemon::StopRequest request) override;
    [[nodiscard]] nlohmann::json info() override;
    // TaskListener, last: answers the stops once no task runs.
    void task_changed(const daemon::Task& task) override;

  private:
    struct Fingerprint;
    [[nodiscard]] Fingerprint fingerprint() const;
    // Runs the loop until nothing is ready, reading what the daemon sent into RECEIVED.
    void run_until_idle(int client_fd, std::string& received);
    // Plays every task out (processes end, timers fire) until none runs and no timer is set; false if it
    // took too many rounds.
    bool settle(int client_fd, std::string& received);
    // Fires the timers started at SINCE or later (a parked wait's own) until the connection has its answer
    // or none is left.
    void run_own_timers(daemon::TimerId since, int client_fd, std::string& received);
    // The waits parked in the sync and manager tables (see Exchange::client_waits_left).
    [[nodiscard]] size_t client_waits() const;
    // Holdings and waits that have a lease (see Exchange::stray_leases), and those leased to a connection.
    struct Leased {
        size_t all = 0;
        size_t to_connections = 0;
        size_t unleased = 0;  // lock or semaphore holders and waiters whose lease is gone
    };
    [[nodiscard]] Leased leased() const;
    // Unlinks the segments of /dev/shm whose names begin with PREFIX.
    static void unlink_segments(const std::string& prefix);
    // Tasks in every state, through requests as a client sends them.
    void populate();
    void request_or_die(const std::string& line);
    void maybe_finish_stop();

    asio::io_context io_{1};
    // Without work an io_context stops, and polls nothing until restarted: between two connections there
    // is none.
    asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
    test::TempDir state_dir_;
    std::unique_ptr<daemon::Store> store_;
    FuzzSpawner spawner_{io_};
    ManualTimers timers_;
    // Warm pools as the daemon has them: their workers are FuzzSpawner's fake processes, so no worker ever
    // says hello, and a pool.set with a worker only makes the pool wait for one.
    daemon::WarmSpawner warm_{io_, spawner_, timers_, state_dir_ / "workers"};
    // Slurm pools as the daemon has them: sbatch, squeue and scancel are FuzzSpawner's fake processes too,
    // which print their arguments and never a job id, so a Slurm task fails to start and nothing reaches a
    // real Slurm.
    daemon::SlurmSpawner slurm_{
        io_,
        warm_,
        spawner_,
        timers_,
        {state_dir_.path(), "/nonexistent/mpctld", "", std::chrono::milliseconds(5000)}};
    daemon::OutputLayout outputs_;
    daemon::TaskEvents events_;
    std::unique_ptr<daemon::Scheduler> scheduler_;
    std::unique_ptr<daemon::StatusView> view_;
    std::unique_ptr<daemon::OutputLimits> output_limits_;
    daemon::FutureTable futures_;
    daemon::Environments environments_;
    std::unique_ptr<daemon::LogStreamer> logs_;
    // The sync, shm and manager families' parts, as Daemon has them (its config's limits but smaller, for
    // the fuzzer's inputs to reach them: the largest segment, the bytes of values).
    daemon::LeaseRegistry leases_{io_, timers_};
    std::unique_ptr<daemon::LockTable> locks_;
    daemon::EventTable events_table_{timers_};
    daemon::BarrierTable barriers_{timers_};
    std::unique_ptr<daemon::SegmentRegistry> segments_;
    std::unique_ptr<daemon::ValueBudget> manager_budget_;
    std::unique_ptr<daemon::QueueTable> queues_;
    std::unique_ptr<daemon::KvTable> dicts_;
    std::unique_ptr<daemon::TokenTable> tokens_;
    std::string lock_dir_;
    // The dicts the fingerprint looks at: those populate() made, and the one the last request named (dicts
    // cannot be listed all at once).
    std::vector<std::string> dicts_made_;
    std::optional<std::string> last_dict_;
    daemon::Registry registry_;
    const daemon::TaskCgroups& cgroups_;
    std::vector<std::shared_ptr<daemon::Responder>> stop_waiters_;
    std::unique_ptr<Fingerprint> initial_;
    size_t open_fds_at_start_ = 0;
};

}  // namespace mpctl::fuzz
