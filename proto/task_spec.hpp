#pragma once
// TaskSpec: what a client asks to run. The same JSON shape is the task.submit params, a task.submit_batch
// entry and the row the daemon journals, so one parser validates all three.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mpctl::proto {

inline constexpr const char* k_default_pool = "default";

// A task's whole environment. Shared (and immutable) because thousands of tasks submitted from one shell
// or one map carry the same one.
using Environment = std::map<std::string, std::string>;
inline constexpr double k_default_kill_after_s = 5.0;
inline constexpr int k_max_retries = 1000;

struct TaskSpec {
    std::vector<std::string> argv;     // the command, executed without a shell; or
    std::optional<std::string> shell;  // a /bin/sh -c string (exactly one of argv and shell)
    std::string cwd;  // absolute; empty until the daemon applies its default (the daemon user's home)
    std::shared_ptr<const Environment> env;  // the whole environment; null: the daemon's
    std::optional<std::string> name;
    std::map<std::string, std::string> labels;
    std::optional<std::string> stdin_path;  // absolute path of a file to feed; nullopt: /dev/null
    std::optional<double> timeout_s;        // then SIGTERM to the group, SIGKILL after kill_after_s
    double kill_after_s = k_default_kill_after_s;
    int retries = 0;  // extra attempts after a failure (exit, signal, timeout)
    double retry_delay_s = 0;
    std::vector<int64_t> after;  // run when all of these succeeded
    std::string pool = k_default_pool;
    int priority = 0;  // higher runs first; FIFO within a priority

    // The command for humans: argv joined, or the shell string.
    [[nodiscard]] std::string display_command() const;
};

// Parses and validates; throws RequestError(invalid_params) naming the field at fault. PATH prefixes the
// names in messages ("params", "params.tasks[3]"). Relative stdin paths are resolved against cwd.
[[nodiscard]] TaskSpec parse_task_spec(const nlohmann::json& value, const std::string& path = "params");

// Applies DEFAULTS (a partial spec object) under VALUE: keys of VALUE win. Used by task.submit_batch.
[[nodiscard]] nlohmann::json merge_spec_defaults(const nlohmann::json& defaults, const nlohmann::json& value);

// With WITH_ENV false the environment is left out (the journal stores it apart, once).
[[nodiscard]] nlohmann::json to_json(const TaskSpec& spec, bool with_env = true);

// Pool names: 1-64 characters of [A-Za-z0-9_.-].
[[nodiscard]] bool valid_pool_name(const std::string& name);

}  // namespace mpctl::proto
