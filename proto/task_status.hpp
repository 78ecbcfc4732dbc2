#pragma once
// The status object: how a task (a future) looks on the wire, in `mpctl status --json` and in every stream.
// The daemon fills it from its task table; clients parse it back with from_json.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace mpctl::proto {

enum class TaskState : uint8_t { pending, running, succeeded, failed, cancelled };
enum class FailReason : uint8_t { none, exit, signal, timeout, spawn, lost, dependency };

[[nodiscard]] std::string_view to_string(TaskState s);
[[nodiscard]] std::string_view to_string(FailReason r);
[[nodiscard]] std::optional<TaskState> parse_task_state(std::string_view s);
[[nodiscard]] std::optional<FailReason> parse_fail_reason(std::string_view s);

[[nodiscard]] inline bool is_finished(TaskState s) {
    return s == TaskState::succeeded || s == TaskState::failed || s == TaskState::cancelled;
}

// One process of a pipeline, as the status object shows it.
struct StageStatus {
    std::vector<std::string> argv;
    std::optional<int> pid;  // while it runs
    std::string state;       // "pending", "running", "succeeded" or "failed"
    std::optional<int> exit_code;
    std::optional<int> signal;
    std::string stderr_path;
};

struct TaskStatus {
    int64_t id = 0;
    std::optional<std::string> name;
    TaskState state = TaskState::pending;
    FailReason reason = FailReason::none;
    std::optional<int> exit_code;
    std::optional<int> signal;
    std::optional<std::vector<std::string>> argv;
    std::optional<std::string> shell;
    std::string cwd;
    std::string pool;
    int priority = 0;
    std::map<std::string, std::string> labels;
    std::vector<int64_t> after;
    int64_t submitted_at_ms = 0;
    std::optional<int64_t> started_at_ms;
    std::optional<int64_t> finished_at_ms;
    int attempts = 0;  // attempts started so far
    int retries = 0;   // extra attempts allowed after a failure
    std::optional<double> timeout_s;
    std::optional<int> pid;  // while running
    std::string stdout_path;
    std::string stderr_path;
    std::optional<std::string> error;  // why it failed, for humans ("spawn: No such file or directory")
    std::optional<std::vector<StageStatus>> stages;  // a pipeline's processes; nullopt for one process
    bool truncated = false;                          // some output went past max_output and was not kept
    std::string backend = "local";                   // where it runs: "local" (this machine) or "slurm"
    std::optional<std::string> backend_id;           // its id there (a Slurm job id), once it has one
    std::optional<std::string> result;               // what its warm worker returned (base64); else absent

    [[nodiscard]] std::optional<int64_t> duration_ms() const;
};

[[nodiscard]] nlohmann::json to_json(const TaskStatus& status);
// The same object as JSON text, written by hand (hot paths: a map's completions): parse(to_json_text(s))
// equals to_json(s).
[[nodiscard]] std::string to_json_text(const TaskStatus& status);
// The brief status (task.as_completed with brief): id, state, reason, exit_code, signal, error, and result
// when there is one; what a client that settles a future per task reads, in a fifth of the text.
[[nodiscard]] std::string to_brief_json_text(const TaskStatus& status);
// Throws RequestError(invalid_params) if VALUE is not a status object.
[[nodiscard]] TaskStatus status_from_json(const nlohmann::json& value);

// The exit code of commands that mirror a task (run, result, wait), as README.md's "Exit codes" says:
// 0 success, the task's own code, 124 timeout, 125 cancelled/lost/dependency, 126/127 not executable/not
// found, 128+N killed by signal N. Unfinished tasks give 124 (the wait timed out).
[[nodiscard]] int mirror_exit_code(const TaskStatus& status);

}  // namespace mpctl::proto
