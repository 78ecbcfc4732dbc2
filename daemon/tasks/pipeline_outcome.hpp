#pragma once
// How a task's processes add up to its outcome. A one-process task has one stage; a pipeline follows
// bash's pipefail, as exec/pipefail.hpp weighs it.

#include <cstddef>

#include <mpctl/daemon/exec/spawner.hpp>
#include <mpctl/daemon/tasks/task.hpp>

namespace mpctl::daemon {

// Whether stage STAGE of TASK's current attempt (which has exited) succeeded.
[[nodiscard]] bool stage_succeeded(const Task& task, size_t stage);

// The exit of the whole attempt, once every stage has exited.
[[nodiscard]] ExitInfo pipeline_outcome(const Task& task);

}  // namespace mpctl::daemon
