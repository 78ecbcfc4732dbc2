#pragma once
// spawn_child: starts one process the way glibc's posix_spawn does inside (clone with CLONE_VM and
// CLONE_VFORK: no copy of the daemon's memory, the daemon waits only until the child has called exec),
// but with what posix_spawn cannot give:
//   - a pidfd from the clone itself (CLONE_PIDFD), so there is no window in which the pid could be reused;
//   - a child stack allocated once and reused, where posix_spawn maps and unmaps one per call (in a
//     multi-threaded daemon every munmap is a TLB shootdown on the other CPUs);
//   - the per-task settings a shell script would expect: nice, rlimits, umask, a cgroup.
// The process rules of docs/ARCHITECTURE.md hold: the child starts with an empty signal mask and default
// dispositions, in its own process group (or the one given, for the stages of a pipeline), in its cwd (the
// daemon never chdirs), with fds 0-2 as given and every other fd closed before exec.
//
// Only async-signal-safe calls run in the child, on memory prepared by the parent. One thread only (one
// child stack, reused: spawns do not overlap): ProcessSpawner's spawn thread.

#include <optional>
#include <string>
#include <sys/resource.h>
#include <sys/types.h>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

struct ResourceLimit {
    int resource = 0;  // RLIMIT_*
    rlim_t soft = 0;
    rlim_t hard = 0;
};

// What the child does between clone and exec. All pointers must stay valid during spawn_child().
struct ChildSetup {
    const char* path = nullptr;          // what to execute (resolved already)
    char* const* argv = nullptr;         // null-terminated
    char* const* envp = nullptr;         // null-terminated
    char* const* script_argv = nullptr;  // /bin/sh fallback when PATH is a script without "#!" (ENOEXEC)
    const char* cwd = nullptr;
    int stdin_fd = -1;
    int stdout_fd = -1;
    int stderr_fd = -1;
    pid_t pgid = 0;           // 0: a new process group led by the child
    std::optional<int> nice;  // setpriority(PRIO_PROCESS)
    std::optional<mode_t> umask;
    std::vector<ResourceLimit> limits;
    int cgroup_procs_fd = -1;  // an open cgroup.procs the child writes its pid to
    int channel_fd = -1;       // becomes the child's descriptor 3 (a warm worker's socket to the daemon)
};

struct SpawnedChild {
    pid_t pid = 0;
    common::UniqueFd pidfd;
    // boottime_ticks_now() just before the clone: at most the child's /proc/PID/stat start time, and so
    // close to it that a later process with the same pid cannot match it (exit_records.hpp). A clock read
    // through the vDSO, where reading the child's stat would cost a /proc open per spawn.
    uint64_t start_ticks = 0;
};

// A failure's context is the step that failed ("clone", "chdir", "exec", "setrlimit", ...) and its err the
// errno; a child that failed has exited, and spawn_child reaped it.
[[nodiscard]] common::Result<SpawnedChild> spawn_child(const ChildSetup& setup);

}  // namespace mpctl::daemon
