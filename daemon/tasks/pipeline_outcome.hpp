#pragma once
// How a task's processes add up to its outcome. A one-process task has one stage; a pipeline follows
// bash's pipefail: the rightmost stage that failed decides, except that a stage before the last that died
// of SIGPIPE (or, being a shell, exited 128+SIGPIPE) did not fail: its reader closed early on purpose, as
// in `yes | head -1`. A shell is a stage whose command's base name is sh, bash, dash, ash, ksh, mksh, zsh or
// busybox: it exits 141 when its child died of SIGPIPE.

#include <cstddef>
#include <string>

#include <mpctl/daemon/exec/spawner.hpp>
#include <mpctl/daemon/tasks/task.hpp>

namespace mpctl::daemon {

// Whether COMMAND (a stage's argv[0]) names a shell.
[[nodiscard]] bool is_shell(const std::string& command);

// Whether stage STAGE of TASK's current attempt (which has exited) succeeded.
[[nodiscard]] bool stage_succeeded(const Task& task, size_t stage);

// The exit of the whole attempt, once every stage has exited.
[[nodiscard]] ExitInfo pipeline_outcome(const Task& task);

}  // namespace mpctl::daemon
