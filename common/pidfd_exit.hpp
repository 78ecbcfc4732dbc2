#pragma once
// The exit status of a process that is not our child, from its pidfd: PIDFD_GET_INFO with PIDFD_INFO_EXIT
// (Linux 6.15). The kernel keeps it once whoever is the process's parent has reaped it, for every pidfd
// opened before that reap: a re-adopted task's second source beside the exit journal (a supervisor that
// died too, tasks reparented to init). Feature-detected: an older kernel answers ENOTTY, and the status is
// simply not known from here.

#include <optional>

namespace mpctl::common {

// The wait status (as waitpid(2) gives it) of the process PIDFD refers to, once it has been reaped.
[[nodiscard]] std::optional<int> pidfd_exit_status(int pidfd);

}  // namespace mpctl::common
