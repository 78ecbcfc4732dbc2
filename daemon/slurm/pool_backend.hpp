#pragma once
// A pool's backend as pool.set's params and a config file's [pools.NAME] table both give it, with the same
// keys and the same rules: backend ("local" or "slurm"), partition, account, slurm_args.

#include <optional>
#include <string>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/slurm/job_files.hpp>

namespace mpctl::daemon::slurm {

// The keys as given (absent: nullopt).
struct BackendKeys {
    std::optional<std::string> backend, partition, account;
    std::optional<std::vector<std::string>> slurm_args;
};

// KEYS over CURRENT, a pool's Slurm settings (nullopt: it runs its tasks here): backend "local" makes it
// local, "slurm" a Slurm pool; no backend keeps what it has, with the settings given. An error is
// "KEY: what it must be", for the caller to say where KEY was.
[[nodiscard]] common::Result<std::optional<PoolSettings>> apply_backend_keys(
    const BackendKeys& keys, std::optional<PoolSettings> current);

}  // namespace mpctl::daemon::slurm
