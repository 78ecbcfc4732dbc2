#include <cerrno>
#include <cstring>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/warm/warm_spawner.hpp>

namespace mpctl::daemon {

WarmSpawner::WarmSpawner(asio::io_context& io, Spawner& processes, Timers& timers, std::string workers_dir)
    : io_(io), processes_(processes), timers_(timers), workers_dir_(std::move(workers_dir)) {
    base_env_ = common::current_environment();
}

void WarmSpawner::set_pool(const std::string& name, const std::optional<WorkerSpec>& spec, int slots) {
    if (!spec) {
        pools_.erase(name);
        return;
    }
    if (auto it = pools_.find(name); it != pools_.end()) {
        it->second->reconfigure(*spec, slots);
        return;
    }
    if (::mkdir(workers_dir_.c_str(), 0700) != 0 && errno != EEXIST) {
        spdlog::warn("workers' logs: mkdir {}: {}", workers_dir_, std::strerror(errno));
    }
    WarmPool::Context ctx{io_, processes_, timers_, workers_dir_ + "/" + name + ".log", base_env_};
    pools_.emplace(name, std::make_unique<WarmPool>(std::move(ctx), name, *spec, slots));
}

std::optional<WorkerSpec> WarmSpawner::spec(const std::string& name) const {
    auto it = pools_.find(name);
    return it == pools_.end() ? std::nullopt : std::optional<WorkerSpec>(it->second->spec());
}

nlohmann::json WarmSpawner::describe(const std::string& name) const {
    auto it = pools_.find(name);
    return it == pools_.end() ? nlohmann::json(nullptr) : it->second->describe();
}

void WarmSpawner::spawn(SpawnSpec spec, OnStarted on_started, OnExit on_exit) {
    if (auto it = pools_.find(spec.pool); it != pools_.end()) {
        it->second->run(std::move(spec), std::move(on_started), std::move(on_exit));
        return;
    }
    processes_.spawn(std::move(spec), std::move(on_started), std::move(on_exit));
}

void WarmSpawner::signal_group(int pgid, int signo) {
    for (auto& [name, pool] : pools_) {
        if (pool->signal(pgid, signo)) {
            return;
        }
    }
    processes_.signal_group(pgid, signo);
}

bool WarmSpawner::group_alive(int pgid) {
    for (const auto& [name, pool] : pools_) {
        if (pool->owns(pgid)) {
            return false;
        }
    }
    return processes_.group_alive(pgid);
}

uint64_t WarmSpawner::start_ticks(int pid) const {
    for (const auto& [name, pool] : pools_) {
        if (pool->owns(pid)) {
            return 0;
        }
    }
    return processes_.start_ticks(pid);
}

common::Result<void> WarmSpawner::adopt(int pid, uint64_t start_ticks, const std::string& pool,
                                        OnExit on_exit) {
    if (pools_.contains(pool)) {
        return common::plain_error("it ran on a worker of warm pool " + pool +
                                   ", which ended with the daemon's socket");
    }
    return processes_.adopt(pid, start_ticks, pool, std::move(on_exit));
}

}  // namespace mpctl::daemon
