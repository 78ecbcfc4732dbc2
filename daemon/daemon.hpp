#pragma once
// Daemon: builds the parts, wires them together and owns the io_context thread on which all their state
// lives. It is where the parts meet and the only file that knows all of them:
//
//   Listener -> Session -> Registry -> commands/* (each family with its own context)
//   Scheduler -> TaskEvents -> Store (journal), FutureTable (waits, log followers), OutputLimits, Daemon
//
// As a TaskListener it hears every task change last, to end the loop once a stop has let the last task
// finish; as DaemonControl it serves daemon.status, daemon.stop and daemon.upgrade. docs/ARCHITECTURE.md
// draws the whole.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <mpctl/daemon/commands/daemon_control.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/config.hpp>
#include <mpctl/daemon/exec/output_files.hpp>
#include <mpctl/daemon/exec/process_spawner.hpp>
#include <mpctl/daemon/exec/task_cgroups.hpp>
#include <mpctl/daemon/leases/lease_registry.hpp>
#include <mpctl/daemon/logs/log_streamer.hpp>
#include <mpctl/daemon/manager/kv_table.hpp>
#include <mpctl/daemon/manager/queue_table.hpp>
#include <mpctl/daemon/manager/value_budget.hpp>
#include <mpctl/daemon/remote/tls_listener.hpp>
#include <mpctl/daemon/remote/token_table.hpp>
#include <mpctl/daemon/retention.hpp>
#include <mpctl/daemon/server/listener.hpp>
#include <mpctl/daemon/service/endpoint.hpp>
#include <mpctl/daemon/service/status_notifier.hpp>
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
#include <mpctl/daemon/tasks/timers.hpp>
#include <mpctl/daemon/warm/warm_spawner.hpp>

namespace mpctl::daemon {

class Daemon final : public TaskListener, public DaemonControl {
  public:
    // Puts JOURNAL (what STORE held at start) into the scheduler.
    Daemon(DaemonConfig config, Endpoint endpoint, std::unique_ptr<Store> store, Store::Contents journal);
    ~Daemon() override;

    // Serves until stopped; ON_READY runs once the loop is about to serve. Returns the exit code.
    int run(const std::function<void()>& on_ready);

    // DaemonControl
    void request_stop(StopRequest request) override;
    void request_upgrade(std::shared_ptr<Responder> responder) override;
    // What an upgrade execs again (main's argv), and how many upgrades came before this image.
    void set_upgrade_source(std::vector<std::string> argv, int upgrades) {
        own_argv_ = std::move(argv);
        upgrades_ = upgrades;
    }
    [[nodiscard]] nlohmann::json info() override;
    // daemon.status's "listen": the TCP addresses remote clients reach it at.
    [[nodiscard]] nlohmann::json listen_addresses() const;

    // TaskListener: the last subscriber of every change.
    void task_changed(const Task& task) override;
    // A transient pool gone with its connection: its warm workers, if it had any, end.
    void transient_pool_dropped(const std::string& name) override;

  private:
    void restore_journal(Store::Contents& journal);
    void register_commands();
    void watch_signals();
    // SIGHUP: RELOADING=1, the config file read again and what may change while serving applied (pool
    // sizes, log level; daemon_reload.cpp), then READY=1. A file that cannot be read changes nothing.
    void reload();
    void apply_config_file();
    // Sets pool NAME to WORKERS as the config file says (not journaled: `mpctl pool set` is what lasts).
    void resize_pool_from_file(const std::string& name, int workers);
    // systemd's STATUS= text: "serving: 3 running, 12 queued".
    [[nodiscard]] std::string status_text() const;
    void maybe_finish_stop();
    // The stop's teardown, once the last task ended and every finish is journaled and told.
    void finish_stop();
    // No new client, no status line, no retention sweep: the first step of a stop and of an upgrade.
    void stop_accepting();
    // The upgrade's teardown, once its answer left and no spawn is on its way (the loop ends), and the
    // exec after the loop ended: returns only if the exec failed.
    void upgrade_when_ready(std::shared_ptr<bool> answered, std::chrono::steady_clock::time_point give_up_at);
    void finish_upgrade();
    int exec_upgrade();
    // Raises the soft descriptor limit (children get the old one back): the new limit, if it could be read.
    std::optional<uint64_t> raise_open_files();
    // How many connections fit in OPEN_FILES descriptors (CONFIGURED at most).
    static size_t connection_limit(size_t configured, std::optional<uint64_t> open_files);

    DaemonConfig config_;
    asio::io_context io_{1};
    Endpoint endpoint_;
    std::unique_ptr<Store> store_;
    ProcessSpawner spawner_{io_};
    AsioTimers timers_{io_};
    OutputLayout outputs_;
    TaskCgroups cgroups_;
    TaskEvents events_;
    std::unique_ptr<WarmSpawner> warm_;  // the scheduler's spawner: warm pools' tasks run on their workers
    std::vector<std::tuple<std::string, WorkerSpec, int>> warm_pools_;  // the journal's, until run()
    // The scheduler's spawner: Slurm pools' tasks become batch jobs, the rest go to warm_.
    std::unique_ptr<SlurmSpawner> slurm_;
    std::unique_ptr<Scheduler> scheduler_;
    std::unique_ptr<StatusView> view_;
    std::unique_ptr<OutputLimits> output_limits_;
    FutureTable futures_;
    Environments environments_;
    std::unique_ptr<LogStreamer> logs_;
    LeaseRegistry leases_{io_, timers_};
    std::unique_ptr<LockTable> locks_;
    EventTable events_table_{timers_};
    BarrierTable barriers_{timers_};
    std::unique_ptr<SegmentRegistry> segments_;
    std::vector<SegmentRow> restored_segments_;  // the journal's, until run() takes them back
    std::unique_ptr<ValueBudget> manager_budget_;
    std::unique_ptr<QueueTable> queues_;
    std::unique_ptr<KvTable> dicts_;
    std::unique_ptr<TokenTable> tokens_;
    std::vector<std::unique_ptr<TlsListener>> tls_listeners_;
    Registry registry_;
    std::unique_ptr<Listener> listener_;
    std::unique_ptr<Retention> retention_;
    asio::signal_set signals_{io_};
    StatusNotifier status_{io_, [this] {
                               return status_text();
                           }};
    int64_t started_at_ms_ = 0;

    // A stop was asked for: the scheduler starts nothing any more.
    [[nodiscard]] bool stopping() const { return scheduler_->starting_stopped(); }
    bool stop_finished_ = false;
    std::vector<std::shared_ptr<Responder>> stop_waiters_;

    std::vector<std::string> own_argv_;
    int upgrades_ = 0;
    bool upgrading_ = false;  // answered daemon.upgrade: the loop ends, then the binary is exec'd
    std::string upgrade_binary_;
    asio::steady_timer upgrade_timer_{io_};
};

}  // namespace mpctl::daemon
