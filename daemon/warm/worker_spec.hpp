#pragma once
// WorkerSpec: what makes a pool warm (pool.set's worker, max_tasks_per_worker, worker_idle_timeout),
// journaled with the pool as JSON text.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mpctl::daemon {

struct WorkerSpec {
    std::vector<std::string> argv;  // the worker's command
    int max_tasks = 0;              // a worker ends after serving this many (0: never)
    double idle_timeout_s = 0;      // a worker idle this long ends (0: never)

    bool operator==(const WorkerSpec&) const = default;
};

[[nodiscard]] nlohmann::json to_json(const WorkerSpec& spec);
// SPEC as journaled; nullopt if it is not one (a damaged row: the pool is cold then).
[[nodiscard]] std::optional<WorkerSpec> worker_spec_from_json(const nlohmann::json& j);

}  // namespace mpctl::daemon
