#pragma once
// Daemon: wires the parts together and owns the io_context thread on which all state lives.
//
//   Listener -> Session -> Registry -> commands/* -> Scheduler (+ ProcessSpawner, AsioTimers)
//                                                 -> Store (writer thread, group commit)
//                                                 -> FutureTable, LogStreamer
// The scheduler reports every task change here (SchedulerListener); the daemon fans it out to the store,
// the waiters and the log followers.

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/config.hpp>
#include <mpctl/daemon/exec/output_files.hpp>
#include <mpctl/daemon/exec/process_spawner.hpp>
#include <mpctl/daemon/logs/log_streamer.hpp>
#include <mpctl/daemon/server/listener.hpp>
#include <mpctl/daemon/service/endpoint.hpp>
#include <mpctl/daemon/store/store.hpp>
#include <mpctl/daemon/tasks/environments.hpp>
#include <mpctl/daemon/tasks/future_table.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>
#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::daemon {

struct StopRequest {
    bool now = false;             // terminate running tasks (recorded as cancelled)
    bool cancel_pending = false;  // cancel queued tasks too
    std::optional<double> kill_after_s;
    std::shared_ptr<Responder> responder;  // answered just before the daemon exits
};

class Daemon final : public SchedulerListener {
  public:
    // Loads the journal into the scheduler; throws std::runtime_error if it cannot.
    Daemon(DaemonConfig config, Endpoint endpoint, std::unique_ptr<Store> store);
    ~Daemon() override;

    // Serves until stopped; ON_READY runs once the loop is about to serve. Returns the exit code.
    int run(const std::function<void()>& on_ready);

    void request_stop(StopRequest request);
    [[nodiscard]] bool stopping() const noexcept { return stopping_; }

    void task_changed(const Task& task) override;
    void transient_pool_dropped(const std::string& name) override;

    [[nodiscard]] const DaemonConfig& config() const noexcept { return config_; }
    [[nodiscard]] int64_t started_at_ms() const noexcept { return started_at_ms_; }
    [[nodiscard]] nlohmann::json info();

    asio::io_context& io() { return io_; }
    Scheduler& scheduler() { return *scheduler_; }
    [[nodiscard]] const TaskCgroups& cgroups() const { return cgroups_; }
    Store& store() { return *store_; }
    FutureTable& futures() { return futures_; }
    Environments& environments() { return environments_; }
    LogStreamer& logs() { return *logs_; }

  private:
    void watch_signals();
    void maybe_finish_stop();

    DaemonConfig config_;
    asio::io_context io_{1};
    Endpoint endpoint_;
    std::unique_ptr<Store> store_;
    ProcessSpawner spawner_{io_};
    AsioTimers timers_{io_};
    // Output retention runs on this while tasks run (see Scheduler::enforce_output_limits).
    asio::steady_timer output_check_{io_};
    bool output_check_armed_ = false;
    void arm_output_check();
    OutputLayout outputs_;
    TaskCgroups cgroups_;
    std::unique_ptr<Scheduler> scheduler_;
    FutureTable futures_;
    Environments environments_;
    std::unique_ptr<LogStreamer> logs_;
    Registry registry_;
    std::unique_ptr<Listener> listener_;
    asio::signal_set signals_{io_};
    int64_t started_at_ms_ = 0;

    bool stopping_ = false;
    bool stop_finished_ = false;
    std::vector<std::shared_ptr<Responder>> stop_waiters_;
};

}  // namespace mpctl::daemon
