#pragma once
// WarmSpawner: the scheduler's Spawner when pools may be warm. A task of a warm pool runs on one of the
// pool's workers (WarmPool); every other task, and the workers themselves, are started by the process
// spawner it wraps. The scheduler sees no difference: a warm task's pid is its worker's, a signal to it ends
// the worker, and no group of a worker counts as alive after the task it ran (the worker goes on to the
// next task; the scheduler must not kill it for the one that ended). Loop thread only.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/daemon/exec/spawner.hpp>
#include <mpctl/daemon/tasks/timers.hpp>
#include <mpctl/daemon/warm/warm_pool.hpp>
#include <mpctl/daemon/warm/worker_spec.hpp>

namespace mpctl::daemon {

class WarmSpawner final : public Spawner {
  public:
    // WORKERS_DIR: where each pool's workers write (NAME.log), made when the first pool is warm.
    WarmSpawner(asio::io_context& io, Spawner& processes, Timers& timers, std::string workers_dir);

    // Makes pool NAME warm with SPEC and SLOTS workers, or cold (nullopt: its workers end).
    void set_pool(const std::string& name, const std::optional<WorkerSpec>& spec, int slots);
    [[nodiscard]] std::optional<WorkerSpec> spec(const std::string& name) const;
    // The warm part of pool NAME's description (pool.list), or null for a cold pool.
    [[nodiscard]] nlohmann::json describe(const std::string& name) const;
    // The daemon stops: every worker's socket is closed, so that they exit.
    void stop() { pools_.clear(); }

    void spawn(SpawnSpec spec, OnStarted on_started, OnExit on_exit) override;
    void signal_group(int pgid, int signo) override;
    [[nodiscard]] bool group_alive(int pgid) override;
    // A worker's task is never re-adopted: its worker held a socket to the daemon that died, and ended with
    // it (or ends at its next read). Everything else is the process spawner's.
    [[nodiscard]] uint64_t start_ticks(int pid) const override;
    [[nodiscard]] common::Result<void> adopt(int pid, uint64_t start_ticks, const std::string& pool,
                                             OnExit on_exit) override;
    void adoptions_done() override { processes_.adoptions_done(); }

  private:
    asio::io_context& io_;
    Spawner& processes_;
    Timers& timers_;
    std::string workers_dir_;
    std::vector<std::string> base_env_;
    std::map<std::string, std::unique_ptr<WarmPool>> pools_;
};

}  // namespace mpctl::daemon
