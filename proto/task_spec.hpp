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
inline constexpr size_t k_max_stages = 64;
// A spec's "input" in base64 characters: 64 KiB of bytes (a small stdin kept in the journal with its task;
// more goes through a file, "stdin", or a passed descriptor).
inline constexpr size_t k_max_input_chars = 87384;

struct TaskSpec {
    std::vector<std::string> argv;                   // the command, executed without a shell; or
    std::optional<std::string> shell;                // a /bin/sh -c string; or
    std::vector<std::vector<std::string>> pipeline;  // stages, each one's stdout the next one's stdin
                                                     // (exactly one of argv, shell and pipeline)
    std::string cwd;  // absolute; empty until the daemon applies its default (the daemon user's home)
    std::shared_ptr<const Environment> env;  // the whole environment; null: the daemon's
    std::optional<std::string> name;
    std::map<std::string, std::string> labels;
    std::optional<std::string> stdin_path;  // a file to feed (relative only without cwd: to the default
                                            // working directory, at start); nullopt: /dev/null
    bool stdin_passed = false;              // stdin is a descriptor the client passed (SCM_RIGHTS)
    std::optional<std::string> input;       // or these bytes are ("input", base64 in JSON): journaled with
                                            // the spec, fed afresh to every attempt
    std::optional<double> timeout_s;        // then SIGTERM to the group, SIGKILL after kill_after_s
    double kill_after_s = k_default_kill_after_s;
    int retries = 0;  // extra attempts after a failure (exit, signal, timeout)
    double retry_delay_s = 0;
    std::vector<int64_t> after;  // run when all of these succeeded
    std::string pool = k_default_pool;
    int priority = 0;  // higher runs first; FIFO within a priority
    // Limits of the task's processes.
    std::optional<int> nice;                  // -20..19
    std::optional<unsigned> umask;            // 0..0777
    std::map<std::string, uint64_t> rlimits;  // "nofile", "as", "cpu", "core", ... -> soft and hard limit
    std::optional<uint64_t> max_output;       // bytes kept per stream; nullopt: the daemon's default
    bool cgroup = false;                      // contain the task in a cgroup of its own (where available)
    // What a Slurm pool's job asks of its node (--cpus-per-task, --mem, --gpus); local pools ignore them.
    std::optional<int> cpus;
    std::optional<uint64_t> mem;  // bytes
    std::optional<int> gpus;
    // A Slurm pool's job array that this task joins runs at most this many of its elements at once
    // (sbatch --array=...%N): mpctl map's -j. Tasks with different values never share an array.
    std::optional<int> array_throttle;
    bool attached = false;  // belongs to the connection that submitted it (not journaled: that connection
                            // does not outlive the daemon)

    // The command for humans: argv joined, the shell string, or the stages joined with " | ".
    [[nodiscard]] std::string display_command() const;
    // The argv of each process: one stage for argv and shell, several for a pipeline.
    [[nodiscard]] std::vector<std::vector<std::string>> stage_argvs() const;
};

// Words as a shell would need them written ("printf 'a b'", bash's $'\xff' for a word with a control
// character or a byte that is not UTF-8: safe on a terminal), and stages joined with " | ".
[[nodiscard]] std::string display_words(const std::vector<std::string>& words);
[[nodiscard]] std::string display_pipeline(const std::vector<std::vector<std::string>>& stages);

// Parses and validates; throws RequestError(invalid_params) naming the field at fault. PATH prefixes the
// names in messages ("params", "params.tasks[3]"). Relative stdin paths are resolved against cwd.
[[nodiscard]] TaskSpec parse_task_spec(const nlohmann::json& value, const std::string& path = "params");

// Checks task.submit_batch's defaults alone, with the rules of a spec but no command required, so that an
// error in them is named as theirs ("params.defaults.timeout") and not as the first entry's.
[[nodiscard]] TaskSpec parse_spec_defaults(const nlohmann::json& value, const std::string& path);

// Applies DEFAULTS (a partial spec object) under VALUE: keys of VALUE win, except where VALUE has null (which
// is absent); an entry's own command replaces the default's whole, and so does its own stdin or stdin_fd.
// Used by task.submit_batch.
[[nodiscard]] nlohmann::json merge_spec_defaults(const nlohmann::json& defaults, const nlohmann::json& value);

// With WITH_ENV false the environment is left out (the journal stores it apart, once).
[[nodiscard]] nlohmann::json to_json(const TaskSpec& spec, bool with_env = true);

// Pool names: 1-64 characters of [A-Za-z0-9_.-].
[[nodiscard]] bool valid_pool_name(const std::string& name);

// The resource limits a task may set, by name (as in `ulimit` and prlimit(1)): RLIMIT_* value, or -1.
[[nodiscard]] int rlimit_resource(const std::string& name);
// The members a spec writes for a process's limits, each only when set: nice, umask, and rlimits as
// {name: integer or "unlimited"}. A warm worker's run message carries a task's limits the same way.
void limits_to_json(nlohmann::json& j, std::optional<int> nice, std::optional<unsigned> umask,
                    const std::map<std::string, uint64_t>& rlimits);
// The name of RLIMIT_* RESOURCE in the spec (its rlimits' keys), or nullptr.
[[nodiscard]] const char* rlimit_name(int resource);

}  // namespace mpctl::proto
