#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/common/time.hpp>
#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/manager_context.hpp>
#include <mpctl/daemon/commands/pool_context.hpp>
#include <mpctl/daemon/commands/shm_context.hpp>
#include <mpctl/daemon/commands/sync_context.hpp>
#include <mpctl/daemon/commands/task_context.hpp>
#include <mpctl/daemon/daemon.hpp>
#include <mpctl/daemon/exec/exit_journal.hpp>
#include <mpctl/daemon/server/group_access.hpp>
#include <mpctl/daemon/server/session.hpp>
#include <mpctl/daemon/service/daemonize.hpp>
#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

namespace {

std::string home_or_root() {
    const char* home = std::getenv("HOME");
    return home != nullptr && home[0] == '/' ? std::string(home) : std::string("/");
}

}  // namespace

Daemon::Daemon(DaemonConfig config, Endpoint endpoint, std::unique_ptr<Store> store, Store::Contents journal)
    : config_(std::move(config)),
      endpoint_(std::move(endpoint)),
      store_(std::move(store)),
      outputs_(config_.state_dir) {
    const auto& pools = journal.pools;
    Scheduler::Options options;
    options.default_workers = config_.workers;
    options.pool_workers = config_.pools;
    // Sizes set with `mpctl pool set` outlive restarts and win over the config file. A transient pool in
    // the journal belonged to a connection of a daemon that died: see below and run().
    for (const auto& [name, row] : pools) {
        if (row.transient) {
            continue;
        }
        options.pool_workers[name] = row.workers;
        if (!row.worker.empty()) {
            if (auto spec = worker_spec_from_json(proto::parse_json_text(row.worker))) {
                warm_pools_.emplace_back(name, std::move(*spec), row.workers);
            }
        }
        if (name == proto::k_default_pool) {
            options.default_workers = row.workers;
        }
    }
    options.daemon_env = common::current_environment();
    options.default_cwd = home_or_root();
    options.max_output = config_.max_output;
    view_ = std::make_unique<StatusView>(outputs_, options.default_cwd);
    // Where the supervising parent records how the tasks of a daemon that died ended: resume() re-adopts
    // them.
    spawner_.set_exit_journal(exit_journal_path(config_.state_dir));
    warm_ = std::make_unique<WarmSpawner>(io_, spawner_, timers_, config_.state_dir + "/workers");
    slurm_ = std::make_unique<SlurmSpawner>(
        io_, *warm_, spawner_, timers_,
        SlurmSpawner::Options{config_.state_dir, slurm_runner_path(), config_.slurm_shared_check});
    // A pool's backend as the config file says, unless `mpctl pool set` set the pool since (the journal).
    for (const auto& [name, settings] : config_.pool_backends) {
        auto row = pools.find(name);
        if (row == pools.end() || row->second.transient) {
            slurm_->set_pool(name, settings);
        }
    }
    for (const auto& [name, row] : pools) {
        if (!row.transient && !row.backend.empty()) {
            slurm_->set_pool(name, slurm_settings_from_json(proto::parse_json_text(row.backend)));
        }
    }
    scheduler_ = std::make_unique<Scheduler>(*slurm_, timers_, outputs_, events_, std::move(options));
    view_->set_backend_of([this](const std::string& pool) { return scheduler_->backend(pool); });
    scheduler_->set_cgroups(&cgroups_);
    output_limits_ = std::make_unique<OutputLimits>(*scheduler_, timers_);
    // Every task change: journaled first, then waiters and log followers, output retention, and last the
    // shutdown that may end the loop.
    events_.subscribe(*store_);
    events_.subscribe(futures_);
    // While tasks wait for slots the daemon is the bottleneck, and the ends it tells share commits (and
    // wake-ups of their waiters): a millisecond more for an answer that waited in a queue anyway.
    futures_.set_journal_barrier([this](std::function<void()> tell, bool an_end) {
        store_->after_commits([tell = std::move(tell)](const common::Result<void>&) { tell(); },
                              an_end && scheduler_->tasks_wait_for_slots());
    });
    events_.subscribe(*output_limits_);
    events_.subscribe(*this);
    for (const auto& [name, row] : pools) {
        if (row.transient) {
            scheduler_->orphan_restored_pool(name);
        }
    }
    restore_journal(journal);
    logs_ = std::make_unique<LogStreamer>(io_, *scheduler_, futures_, *view_);
    locks_ = std::make_unique<LockTable>(timers_, leases_, *store_, journal.next_lock_token);
    segments_ = std::make_unique<SegmentRegistry>(leases_, *store_, timers_, config_.shm_max_size);
    restored_segments_ = std::move(journal.segments);
    manager_budget_ = std::make_unique<ValueBudget>(config_.manager_max_bytes);
    queues_ = std::make_unique<QueueTable>(*store_, timers_, *manager_budget_);
    queues_->restore(std::move(journal.queues));
    dicts_ = std::make_unique<KvTable>(*store_, timers_, *manager_budget_);
    dicts_->restore(std::move(journal.dicts));
    tokens_ = std::make_unique<TokenTable>(*store_);
    tokens_->restore(journal.tokens);
    register_commands();
    retention_ = std::make_unique<Retention>(io_, *store_, *scheduler_, config_.keep_finished_s,
                                             config_.keep_finished_max);
    auto open_files = raise_open_files();
    // A second descriptor of the listening socket stays here: an upgrade hands it to the next image after
    // the Listener has closed its own (a client that connects meanwhile waits in the backlog).
    common::UniqueFd serving(::fcntl(endpoint_.listener.get(), F_DUPFD_CLOEXEC, 3));
    if (!serving) {
        throw std::runtime_error(std::string("dup of the listening socket: ") + std::strerror(errno));
    }
    std::swap(serving, endpoint_.listener);
    listener_ = std::make_unique<Listener>(io_, std::move(serving), registry_,
                                           connection_limit(config_.max_connections, open_files),
                                           open_files.value_or(0));
    if (auto group = admitted_group(config_.group)) {
        listener_->admit_group(*group, config_.group);
        spdlog::info("serving members of group {} (gid {}) besides root", config_.group, *group);
    }
    if (!config_.listen.empty()) {
        auto identity = load_or_create_identity(config_.state_dir);
        if (!identity) {
            throw std::runtime_error(identity.error().message());
        }
        for (const auto& url : config_.listen) {
            tls_listeners_.push_back(
                std::make_unique<TlsListener>(io_, url, *identity, *tokens_, *listener_));
        }
        spdlog::info("remote clients pin the certificate {}", identity->fingerprint);
    }
}

std::optional<uint64_t> Daemon::raise_open_files() {
    // A daemon that serves many clients needs more than the 1024 descriptors a login shell hands down; its
    // tasks get that 1024 back (select() breaks above it).
    auto limit = common::raise_open_files_limit();
    if (!limit) {
        spdlog::warn("{}", limit.error().message());
        return std::nullopt;
    }
    spdlog::debug("open files: soft limit {} raised to {} (hard {})", limit->soft, limit->raised_soft,
                  limit->hard);
    spawner_.set_child_open_files_limit(limit->soft, limit->hard);
    return limit->raised_soft;
}

size_t Daemon::connection_limit(size_t configured, std::optional<uint64_t> open_files) {
    // Half the descriptors at most for connections: the rest are for tasks (pidfds, pipes, output files)
    // and the journal, which must not fail because clients took everything.
    if (!open_files || configured <= *open_files / 2) {
        return configured;
    }
    size_t half = static_cast<size_t>(std::max<uint64_t>(*open_files / 2, 1));
    spdlog::info("max_connections {} lowered to {}: half of the {} descriptors this process may open",
                 configured, half, *open_files);
    return half;
}

Daemon::~Daemon() = default;

void Daemon::restore_journal(Store::Contents& journal) {
    // Above every id the journal knows and every id whose output files are still there: a journal that
    // lost rows must not give a new task an old task's id, and its files with it.
    int64_t next_id = std::max(journal.next_task_id, OutputLayout::highest_task_id(config_.state_dir) + 1);
    auto& tasks = journal.tasks;
    const auto& envs = journal.environments;
    int64_t next_env_id = journal.next_environment_id;
    scheduler_->set_next_id(next_id);
    environments_.set_next_id(next_env_id);
    for (auto& [id, env] : envs) {
        environments_.restore(id, env);
    }
    size_t restored = tasks.size();
    for (auto& t : tasks) {
        if (auto env = envs.find(t.env_id); env != envs.end()) {
            t.spec.set_env(env->second);
        } else if (t.env_id != 0 && !t.finished()) {
            spdlog::warn("task {}: its environment {} is missing from the journal; it runs with the daemon's",
                         t.id, t.env_id);
        }
        scheduler_->restore(std::move(t));
    }
    spdlog::info("journal: {} tasks, next id {}", restored, next_id);
}

void Daemon::register_commands() {
    TaskContext tasks{io_, *scheduler_, *view_, *store_, futures_, environments_, *logs_, cgroups_};
    register_task_submit_commands(registry_, tasks);
    register_task_query_commands(registry_, tasks);
    register_task_wait_commands(registry_, tasks);
    register_task_control_commands(registry_, tasks);
    register_task_logs_command(registry_, tasks);
    register_task_remove_commands(registry_, tasks);
    register_pool_commands(registry_, PoolContext{*scheduler_, *store_, *warm_, *slurm_});
    SyncContext sync{*locks_, events_table_, barriers_};
    register_lock_commands(registry_, sync);
    register_sync_commands(registry_, sync);
    register_shm_commands(registry_, ShmContext{*segments_});
    ManagerContext manager{*queues_, *dicts_};
    register_queue_commands(registry_, manager);
    register_kv_commands(registry_, manager);
    register_token_commands(registry_, *tokens_);
    register_daemon_commands(registry_, *this);
}

int Daemon::run(const std::function<void()>& on_ready) {
    started_at_ms_ = common::now_unix_ms();
    store_->start(io_);
    // After the writer started: taking segments back forgets (journals) those that went meanwhile.
    segments_->restore(restored_segments_);
    restored_segments_.clear();
    // The signal handlers first: the spawner reads them to know what to reset in a child.
    watch_signals();
    for (auto& [name, spec, slots] : warm_pools_) {
        warm_->set_pool(name, spec, slots);
    }
    warm_pools_.clear();
    // Resuming journals the lost tasks (and the cancelled queues of dead maps), so it comes after the
    // writer started.
    if (upgrades_ > 0) {
        spawner_.set_reaps_own_children();  // the last image's tasks are this process's children still
    }
    scheduler_->resume();
    retention_->start();
    listener_->start();
    for (auto& tls : tls_listeners_) {
        tls->start();
    }
    if (upgrades_ > 0) {
        // The last image's children that are no task of this one (warm workers, whose sockets closed with
        // the exec; the stages of lost pipelines) are reaped as they end.
        spawner_.reap_strays();
    }
    spdlog::info("mpctld {} serving {}{} (state dir {}, {} workers, durability {}){}", MPCTL_VERSION,
                 config_.socket_path, endpoint_.activated ? " (socket passed by systemd)" : "",
                 config_.state_dir, config_.workers, to_string(config_.durability),
                 upgrades_ > 0 ? " after upgrade " + std::to_string(upgrades_) : std::string());
    // Ready from inside the loop: whoever hears READY=1 (systemd, or the original process of a daemonized
    // start) is answered from now on.
    asio::post(io_, [this, &on_ready] {
        on_ready();
        status_.send_now("");
    });
    // The backstop: handlers answer their own errors (guarded, and the registry's choke point), so what
    // still reaches the loop is a bug. It is logged and the daemon keeps serving its tasks: Asio lets
    // run() resume after a handler threw.
    for (;;) {
        try {
            io_.run();
            break;
        } catch (const std::exception& e) {
            spdlog::error("internal error in a handler (still serving): {}", e.what());
        } catch (...) {
            spdlog::error("internal error in a handler (still serving): unknown exception");
        }
    }
    if (upgrading_) {
        return exec_upgrade();
    }
    segments_->unlink_leased();
    warm_->stop();
    if (!endpoint_.activated) {
        release_socket(config_.socket_path);  // a passed socket's file is its socket unit's
    }
    spdlog::info("mpctld stopped ({} journal commits)", store_->commit_count());
    return 0;
}

void Daemon::watch_signals() {
    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.add(SIGHUP);
    signals_.async_wait([this](const std::error_code& ec, int signo) {
        if (ec) {
            if (ec != asio::error::operation_aborted) {
                spdlog::error("signals: {}; SIGTERM no longer stops the daemon", ec.message());
            }
            return;
        }
        if (signo == SIGHUP) {
            reload();
            watch_signals();
            return;
        }
        spdlog::info("{}: stopping now (running tasks get SIGTERM, then SIGKILL)",
                     signo == SIGTERM ? "SIGTERM" : "SIGINT");
        request_stop(StopRequest{true, false, config_.kill_after_s, nullptr});
        watch_signals();  // a second signal is harmless; keep listening so it is not fatal
    });
}

void Daemon::transient_pool_dropped(const std::string& name) {
    warm_->set_pool(name, std::nullopt, 0);
    slurm_->set_pool(name, std::nullopt);
}

void Daemon::task_changed(const Task&) {
    status_.changed();
    if (stopping()) {
        maybe_finish_stop();
    }
}

void Daemon::request_stop(StopRequest request) {
    if (upgrading_) {
        // The next image serves in a moment; a signal's stop is lost (logged), a client is told to ask it.
        if (request.responder) {
            request.responder->error(proto::ErrorCode::invalid_state,
                                     "the daemon is upgrading: ask again once it answers");
        } else {
            spdlog::warn("a stop during the upgrade is ignored: stop the upgraded daemon");
        }
        return;
    }
    if (request.responder) {
        stop_waiters_.push_back(request.responder);
    }
    if (scheduler_->stop(request.cancel_pending, request.now,
                         request.kill_after_s.value_or(config_.kill_after_s))) {
        spdlog::info("stopping: no new task starts; {} running", scheduler_->running_count());
        status_.send_now("STOPPING=1");
        // Nothing waits for Slurm to come back: a job never submitted is no running work to wait for.
        slurm_->stop();
    }
    maybe_finish_stop();
}

void Daemon::maybe_finish_stop() {
    if (upgrading_ || !stopping() || stop_finished_ || scheduler_->running_count() > 0) {
        return;
    }
    stop_finished_ = true;
    // The waiters of the tasks that ended last hear of it after its commit (FutureTable): the teardown
    // waits for those answers, which the commits queued so far run first.
    store_->after_commits([this](const common::Result<void>&) { finish_stop(); });
}

void Daemon::stop_accepting() {
    status_.stop();
    listener_->stop();
    for (auto& tls : tls_listeners_) {
        tls->stop();
    }
    retention_->stop();
}

void Daemon::finish_stop() {
    // Everything reaches the disk before anyone hears that we stopped.
    endpoint_.listener.reset();  // kept for an upgrade only: a stopped daemon's socket refuses at once
    stop_accepting();
    segments_->unlink_leased();  // before the journal's last commit, which forgets their rows
    warm_->stop();               // every worker reads end of file and exits
    store_->stop();
    for (auto& r : stop_waiters_) {
        r->result({{"stopped", true}});
    }
    // Let the answers leave before the loop ends (which ends run()); a client that does not read gets
    // two seconds.
    auto done = std::make_shared<bool>(false);
    auto finish = [this, done] {
        if (*done) {
            return;
        }
        *done = true;
        listener_->close_all();
        io_.stop();
    };
    auto remaining = std::make_shared<size_t>(stop_waiters_.size());
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(2));
    timer->async_wait([finish, timer](const std::error_code& ec) {
        if (ec && ec != asio::error::operation_aborted) {
            spdlog::error("stop timer: {}", ec.message());
        }
        finish();  // also when cancelled: the loop must end either way
    });
    auto waiters = std::move(stop_waiters_);
    stop_waiters_.clear();
    if (waiters.empty()) {
        asio::post(io_, finish);
    }
    for (auto& r : waiters) {
        auto s = r->session();
        auto one_done = [remaining, finish] {
            if (--*remaining == 0) {
                finish();
            }
        };
        if (s) {
            // Written out, not merely below the low-water mark: a small answer is below it at once, and
            // the loop ended before it left (27 answers to daemon.stop lost in 40).
            s->when_flushed(one_done);
        } else {
            one_done();
        }
    }
}

void Daemon::request_upgrade(std::shared_ptr<Responder> responder) {
    using proto::ErrorCode;
    using proto::RequestError;
    if (upgrading_) {
        throw RequestError(ErrorCode::invalid_state, "the daemon is upgrading already");
    }
    if (stopping()) {
        throw RequestError(ErrorCode::invalid_state, "the daemon is stopping");
    }
    // Checked before anything is torn down: a binary that cannot run leaves this one serving.
    std::string binary = own_binary_path();
    if (auto r = check_executable(binary); !r) {
        throw RequestError(ErrorCode::invalid_state,
                           "cannot upgrade: " + r.error().message() + " (the daemon serves on unchanged)");
    }
    upgrading_ = true;
    upgrade_binary_ = binary;
    // Nothing starts any more: a task whose start were still on its way at the exec would have no pid in
    // the journal, and the next image would take it for lost.
    scheduler_->stop_starting();
    spdlog::info("upgrade: executing {} in place (pid {}); {} running tasks stay", binary, ::getpid(),
                 scheduler_->running_count());
    systemd_notify("RELOADING=1\n" + monotonic_usec_field());
    responder->result({{"upgrading", true}, {"pid", ::getpid()}, {"binary", binary}});
    // Once the answer has left (two seconds at most for a client that does not read) and the spawn thread
    // has handed over every start it had (the journal must hold their pids).
    auto answered = std::make_shared<bool>(false);
    if (auto s = responder->session()) {
        s->when_flushed([answered] { *answered = true; });
    } else {
        *answered = true;
    }
    upgrade_when_ready(answered, std::chrono::steady_clock::now() + std::chrono::seconds(2));
}

void Daemon::upgrade_when_ready(std::shared_ptr<bool> answered,
                                std::chrono::steady_clock::time_point give_up_at) {
    bool late = std::chrono::steady_clock::now() >= give_up_at;
    if ((*answered || late) && (spawner_.idle() || late)) {
        finish_upgrade();
        return;
    }
    upgrade_timer_.expires_after(std::chrono::milliseconds(5));
    upgrade_timer_.async_wait([this, answered, give_up_at](const std::error_code& ec) {
        if (!ec) {
            upgrade_when_ready(answered, give_up_at);
        }
    });
}

void Daemon::finish_upgrade() {
    // As a stop, except that the tasks run on: no more clients, and every commit on the disk.
    stop_accepting();
    store_->stop();
    listener_->close_all();  // their clients connect again, and wait in the backlog for the next image
    io_.stop();
}

int Daemon::exec_upgrade() {
    Handover handover;
    handover.lock_fd = endpoint_.lock.get();
    handover.listen_fd = endpoint_.listener.get();
    handover.activated = endpoint_.activated;
    handover.supervisor = config_.supervisor_pid;
    handover.restarts = config_.restarts;
    handover.upgrades = upgrades_ + 1;
    handover.link_fd = config_.supervisor_link;
    spdlog::info("upgrade: {} commits journaled; exec {}", store_->commit_count(), upgrade_binary_);
    auto error = exec_with_handover(upgrade_binary_, own_argv_, handover);
    // Checked just before, so rare (the binary replaced meanwhile by one that cannot run). The journal is
    // closed: the daemon exits, its tasks keep running, and the next start (the supervisor's, with
    // --supervise) re-adopts them.
    spdlog::error("upgrade: {}; exiting (the tasks keep running and the next start re-adopts them)",
                  error.message());
    return 1;
}

nlohmann::json Daemon::listen_addresses() const {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& tls : tls_listeners_) {
        out.push_back(tls->address());
    }
    return out;
}

nlohmann::json Daemon::info() {
    return {
        {"pid", ::getpid()},
        {"upgrades", upgrades_},
        {"readopted", scheduler_->readopted()},
        {"supervisor", config_.supervisor_pid > 0
                           ? nlohmann::json{{"pid", config_.supervisor_pid}, {"restarts", config_.restarts}}
                           : nlohmann::json(nullptr)},
        {"version", MPCTL_VERSION},
        {"started_at", common::format_rfc3339_ms(started_at_ms_)},
        {"uptime_ms", common::now_unix_ms() - started_at_ms_},
        {"socket", config_.socket_path},
        {"state_dir", config_.state_dir},
        {"workers", scheduler_->pool_workers(proto::k_default_pool)},
        {"durability", to_string(config_.durability)},
        {"listen", listen_addresses()},
        {"stopping", stopping()},
        {"tasks", scheduler_->counts().by_state_json()},
        {"next_id", scheduler_->next_id()},
        {"cgroups", cgroups_.unavailable()
                        ? nlohmann::json{{"available", false}, {"reason", *cgroups_.unavailable()}}
                        : nlohmann::json{{"available", true}, {"reason", nullptr}}},
    };
}

}  // namespace mpctl::daemon
