#pragma once
// How mpctl shows things: human tables on a terminal, JSON (one object, or one per line) with --json.
// Colors only on a TTY and never with NO_COLOR set.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <mpctl/proto/task_status.hpp>

namespace mpctl::cli {

[[nodiscard]] bool color_enabled(int fd);

// One compact JSON object and a newline on stdout.
void print_json(const nlohmann::json& value);

// Raw bytes to FD, all of them (task output is binary).
void write_out(int fd, std::string_view bytes);

// A queue's or a dict's value (any JSON) as a line shows it: a string as its text, with terminal_text's
// escapes when ESCAPE (on a terminal, in a table), anything else as compact JSON.
[[nodiscard]] std::string value_text(const nlohmann::json& value, bool escape);

// ROWS (the first: the header) in columns two spaces apart, each as wide as its widest cell (counted in
// bytes: cells are ASCII or escaped with terminal_text), RIGHT[i] aligning column i to the right; the last
// column is not padded.
[[nodiscard]] std::string format_table(const std::vector<std::vector<std::string>>& rows,
                                       const std::vector<bool>& right);

// ID STATE EXIT TIME WHEN POOL NAME COMMAND. On a terminal (and unless WIDE) each row fits its width: the
// command, then the name, are cut with an ellipsis; WHEN says how long ago. A pending task's state says
// what it waits for ("pending (after 12)", "pending (queued)").
void print_status_table(const std::vector<proto::TaskStatus>& tasks, bool wide = false);
void print_status_detail(const proto::TaskStatus& task);

// "3.2s", "1m05s", "2h03m"
[[nodiscard]] std::string human_duration(int64_t ms);
// "succeeded", "failed (exit 2)", "failed (SIGKILL)", "failed (timeout)" ...
[[nodiscard]] std::string describe_outcome(const proto::TaskStatus& task);
// What mpctl says on stderr of a task whose end its own output cannot explain, as a shell says "command not
// found": it could not start, timed out, was lost or failed a dependency ("mpctl: task 7 failed (spawn):
// command not found: foo\n"); empty for any other end. Said by run, result and map alike.
[[nodiscard]] std::string unexplained_end(const proto::TaskStatus& task);
[[nodiscard]] std::string command_of(const proto::TaskStatus& task);

}  // namespace mpctl::cli
