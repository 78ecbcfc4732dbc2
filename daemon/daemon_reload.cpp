// Daemon::reload (SIGHUP) and the STATUS= text systemd shows: what of the daemon systemd asks about.
#include <algorithm>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include <mpctl/daemon/daemon.hpp>
#include <mpctl/daemon/service/daemonize.hpp>

namespace mpctl::daemon {

std::string Daemon::status_text() const {
    return std::string(stopping() ? "stopping" : "serving") + ": " +
           std::to_string(scheduler_->running_count()) + " running, " +
           std::to_string(scheduler_->count(proto::TaskState::pending)) + " queued";
}

void Daemon::reload() {
    if (stopping()) {
        spdlog::info("SIGHUP: stopping; nothing reloaded");
        return;
    }
    systemd_notify("RELOADING=1\n" + monotonic_usec_field());
    spdlog::info("SIGHUP: reading the config file {} again", config_.config_path);
    apply_config_file();
    // Whatever the file said, the daemon serves on: systemd must hear it is ready again.
    status_.send_now("READY=1");
}

// Applies what changed in the file since it was last read (at start or the last reload): so a size set
// with `mpctl pool set` stays unless the file's line for that pool changed. Flags win over the file here
// as at start. Nothing is journaled: at the next start the usual order applies (journal, file, defaults).
void Daemon::apply_config_file() {
    DaemonConfig fresh;
    if (auto r = load_config_file(config_.config_path, config_.config_required, fresh); !r) {
        spdlog::error("reload: {}; nothing changed, the settings in use are kept", r.error().message());
        return;
    }
    const ReloadableSettings before = config_.from_file;
    const ReloadableSettings& after = fresh.from_file;
    if (after == before) {
        spdlog::info("reload: no change to workers, pool sizes or log_level in the config file");
    }
    if (after.log_level != before.log_level) {
        if (config_.log_level_flag) {
            spdlog::info("reload: log_level {} in the config file ignored: --log-level {} wins",
                         after.log_level, config_.log_level);
        } else {
            spdlog::info("reload: log_level {} -> {}", config_.log_level, after.log_level);
            config_.log_level = after.log_level;
            spdlog::set_level(spdlog::level::from_str(config_.log_level));
        }
    }
    if (after.workers != before.workers) {
        if (config_.workers_flag) {
            spdlog::info("reload: workers {} in the config file ignored: --workers {} wins", after.workers,
                         config_.workers);
        } else {
            int workers = after.workers > 0
                              ? after.workers
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
            config_.workers = workers;
            resize_pool_from_file(proto::k_default_pool, workers);
        }
    }
    std::set<std::string> names;
    for (const auto& [name, workers] : before.pools) {
        names.insert(name);
    }
    for (const auto& [name, workers] : after.pools) {
        names.insert(name);
    }
    for (const auto& name : names) {
        auto now = after.pools.find(name);
        auto then = before.pools.find(name);
        if (now == after.pools.end()) {
            spdlog::info("reload: pool {} is no longer in the config file; it keeps its {} workers", name,
                         scheduler_->pool_workers(name));
        } else if (then == before.pools.end() || then->second != now->second) {
            resize_pool_from_file(name, now->second);
        }
    }
    config_.pools = after.pools;
    config_.from_file = after;
}

void Daemon::resize_pool_from_file(const std::string& name, int workers) {
    for (const auto& p : scheduler_->pools()) {
        if (p.name == name && p.transient) {
            spdlog::warn("reload: pool {} belongs to a client (transient); its size is left at {}", name,
                         p.workers);
            return;
        }
    }
    int old = scheduler_->pool_workers(name);
    scheduler_->set_pool_workers(name, workers);
    if (auto spec = warm_->spec(name)) {
        warm_->set_pool(name, spec, workers);
    }
    spdlog::info("reload: pool {}: {} -> {} workers", name, old, workers);
}

}  // namespace mpctl::daemon
