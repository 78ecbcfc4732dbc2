#pragma once
// PoolContext: what the pool family (pool.*) works with: the scheduler's pools and the journal that keeps
// their sizes. Loop thread only.

#include <mpctl/daemon/slurm/slurm_spawner.hpp>
#include <mpctl/daemon/store/store.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>
#include <mpctl/daemon/warm/warm_spawner.hpp>

namespace mpctl::daemon {

struct PoolContext {
    Scheduler& scheduler;
    Store& store;
    WarmSpawner& warm;    // which pools are warm, and their workers
    SlurmSpawner& slurm;  // which pools are backed by Slurm
};

}  // namespace mpctl::daemon
