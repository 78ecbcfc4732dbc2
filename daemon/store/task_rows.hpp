#pragma once
// A task as one row of the journal's tasks table, both ways: what is written at a submit (with the spec)
// and at each change (without), and what start-up reads back into a Task.

#include <cstdint>
#include <optional>
#include <string>

#include <sqlite3.h>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/tasks/task.hpp>

namespace mpctl::daemon {

struct TaskRow {
    int64_t id = 0;
    std::string spec;  // JSON, inserts only
    std::string state;
    std::string reason;
    std::optional<int> exit_code;
    std::optional<int> signal;
    int64_t submitted_at = 0;
    std::optional<int64_t> started_at;
    std::optional<int64_t> finished_at;
    int attempts = 0;
    std::optional<int> pid;
    std::optional<int64_t> pid_start;  // with pid: its process's start time (Task::pid_start)
    std::optional<std::string> error;
    std::optional<std::string> outcome;  // JSON: a pipeline's stage results, truncated output
    int64_t env_id = 0;                  // inserts only
};

// TASK's journaled fields (the spec only when WITH_SPEC: it never changes after the insert).
[[nodiscard]] TaskRow row_of(const Task& task, bool with_spec = false);

// The columns the insert and update statements below take.
inline constexpr const char* k_insert_task_sql =
    "INSERT INTO tasks (id, state, reason, exit_code, signal, submitted_at, started_at, finished_at, "
    "attempts, pid, error, outcome, spec, env_id, pid_start) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
    "?10, ?11, ?12, ?13, ?14, ?15)";
inline constexpr const char* k_update_task_sql =
    "UPDATE tasks SET state = ?2, reason = ?3, exit_code = ?4, signal = ?5, submitted_at = ?6, "
    "started_at = ?7, finished_at = ?8, attempts = ?9, pid = ?10, error = ?11, outcome = ?12, "
    "pid_start = ?15 WHERE id = ?1";
// The columns read_task expects, in order.
inline constexpr const char* k_select_tasks_sql =
    "SELECT id, spec, state, reason, exit_code, signal, submitted_at, started_at, finished_at, attempts, "
    "pid, error, env_id, outcome, pid_start FROM tasks ORDER BY id";

// Binds ROW to STMT (an insert WITH_SPEC, or an update) and steps it.
[[nodiscard]] common::Result<void> write_task_row(sqlite3* db, sqlite3_stmt* stmt, const TaskRow& row,
                                                  bool with_spec);

// The task in the current row of a k_select_tasks_sql query; nullopt (logged) if its spec is unreadable.
[[nodiscard]] std::optional<Task> read_task(sqlite3_stmt* stmt);

}  // namespace mpctl::daemon
