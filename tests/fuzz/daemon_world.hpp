#pragma once
// DaemonWorld: mpctld's command side, in-process, for fuzz_params. Built the way Daemon builds itself
// (the same Scheduler, Store, FutureTable, LogStreamer, Registry and every command family), with what a
// fuzzer cannot have replaced: processes by FuzzSpawner, the scheduler's clock by ManualTimers, the state
// dir by a temporary directory, and the daemon's own stop by one that stops the tasks but not the loop.
//
// A request is exchanged on a connection of its own: a socket pair whose one end is a real Session, so
// that the line goes through the framer, the parser and the Registry as a client's does. The world starts
// with tasks in every state (first_task_id() and on, see populate()); a request that changes that state
// marks the world as changed, and the harness builds a fresh one, so that every input meets the same
// daemon and a crash reproduces from its input alone. Loop thread only (the test's thread).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <mpctl/daemon/commands/daemon_control.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/exec/output_files.hpp>
#include <mpctl/daemon/exec/task_cgroups.hpp>
#include <mpctl/daemon/logs/log_streamer.hpp>
#include <mpctl/daemon/store/store.hpp>
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
        bool settled = true;   // false if the tasks could not all be played out (the answer may be owed)
        // What the connection left behind once closed: parked waits, log followers, the session itself.
        size_t watches_left = 0;
        size_t followers_left = 0;
        bool session_left = false;
        size_t open_fds = 0;  // the process's (see open_fds()), once the connection is closed
    };
    // Sends LINE (without its '\n') on a new connection, with PASSED_FDS descriptors of /dev/null (for
    // stdin_fd), lets the daemon answer now or, if it parks the request, once every task has run to its
    // end, then closes the connection.
    Exchange exchange(std::string_view line, size_t passed_fds = 0);

    // Whether a request changed the state the world was built with (a task, a pool, a stop).
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
    daemon::OutputLayout outputs_;
    daemon::TaskEvents events_;
    std::unique_ptr<daemon::Scheduler> scheduler_;
    std::unique_ptr<daemon::StatusView> view_;
    std::unique_ptr<daemon::OutputLimits> output_limits_;
    daemon::FutureTable futures_;
    daemon::Environments environments_;
    std::unique_ptr<daemon::LogStreamer> logs_;
    daemon::Registry registry_;
    const daemon::TaskCgroups& cgroups_;
    std::vector<std::shared_ptr<daemon::Responder>> stop_waiters_;
    std::unique_ptr<Fingerprint> initial_;
    size_t open_fds_at_start_ = 0;
};

}  // namespace mpctl::fuzz
