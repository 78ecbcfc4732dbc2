#pragma once
// bash's pipefail, as mpctl weighs a pipeline: pure, so that the daemon (tasks/pipeline_outcome.hpp) and a
// Slurm job's runner, which runs a pipeline on its node and tells Slurm its exit code, weigh it alike.
//
// The rightmost stage that failed decides, except that a stage before the last that died of SIGPIPE (or,
// being a shell, exited 128+SIGPIPE) did not fail: its reader closed early on purpose, as in `yes | head -1`.
// A shell is a stage whose command's base name is sh, bash, dash, ash, ksh, mksh, zsh or busybox: it exits
// 141 when its child died of SIGPIPE.

#include <cstddef>
#include <optional>
#include <string_view>

namespace mpctl::daemon {

// Whether COMMAND (a stage's argv[0]) names a shell.
[[nodiscard]] bool is_shell(std::string_view command);

// Whether stage I of N, whose command is COMMAND, succeeded, having ended with EXIT_CODE or SIGNAL.
[[nodiscard]] bool stage_ok(size_t i, size_t n, std::optional<int> exit_code, std::optional<int> signal,
                            std::string_view command);

}  // namespace mpctl::daemon
