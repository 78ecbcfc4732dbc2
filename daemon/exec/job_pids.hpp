#pragma once
// The pids that stand for work that is no process of this machine (a Slurm job, slurm/slurm_spawner.hpp):
// the scheduler keys running work by pid, and these are above any pid_max (the kernel's largest is 2^22),
// so no process can have one. Job J is pid k_job_pid_base + J.

#include <cstdint>

namespace mpctl::daemon {

inline constexpr int k_job_pid_base = 1 << 30;
inline constexpr int64_t k_max_job_id = (int64_t{1} << 31) - 1 - k_job_pid_base;

[[nodiscard]] inline bool is_job_pid(int pid) {
    return pid >= k_job_pid_base;
}
[[nodiscard]] inline int64_t job_of(int pid) {
    return pid - int64_t{k_job_pid_base};
}
[[nodiscard]] inline int job_pid(int64_t job) {
    return static_cast<int>(k_job_pid_base + job);
}

}  // namespace mpctl::daemon
