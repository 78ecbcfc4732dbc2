#pragma once
// The pids that stand for work that is no process of this machine (a Slurm job, slurm/slurm_spawner.hpp):
// the scheduler keys running work by pid, and these are above any pid_max (the kernel's largest is 2^22),
// so no process can have one.
//
// A plain batch job J is pid k_job_pid_base + J. An element of a job array has no id of its own when it is
// submitted, and an array's id and index do not fit one int: it is k_element_pid_base + H, H a handle its
// spawner hands out, and the array's id and the element's index are in the "start" the scheduler journals
// beside every pid (for a process its start time, against pid reuse): element_start(). So both outlive a
// restart, and job_key() tells either one's Slurm id from what the journal keeps.

#include <cstdint>
#include <string>

namespace mpctl::daemon {

inline constexpr int k_job_pid_base = 1 << 30;
inline constexpr int k_element_pid_base = k_job_pid_base + (1 << 29);
// Slurm's own MaxJobId is below 2^26.
inline constexpr int64_t k_max_job_id = (int64_t{1} << 29) - 1;
inline constexpr int k_max_element_handle = (1 << 29) - 1;

[[nodiscard]] inline bool is_job_pid(int pid) {
    return pid >= k_job_pid_base;
}
[[nodiscard]] inline bool is_element_pid(int pid) {
    return pid >= k_element_pid_base;
}
// A plain job's id, and its pid.
[[nodiscard]] inline int64_t job_of(int pid) {
    return pid - int64_t{k_job_pid_base};
}
[[nodiscard]] inline int job_pid(int64_t job) {
    return static_cast<int>(k_job_pid_base + job);
}
[[nodiscard]] inline int element_pid(int handle) {
    return k_element_pid_base + handle;
}
// Element INDEX of array ARRAY as the start journaled with its pid (never 0, which means "unknown"), and
// back: false if START is none.
[[nodiscard]] inline uint64_t element_start(int64_t array, int64_t index) {
    return (static_cast<uint64_t>(array) << 24) | static_cast<uint64_t>(index + 1);
}
[[nodiscard]] inline bool element_of(uint64_t start, int64_t& array, int64_t& index) {
    array = static_cast<int64_t>(start >> 24);
    index = static_cast<int64_t>(start & 0xFFFFFF) - 1;
    return array > 0 && array <= k_max_job_id && index >= 0;
}

// The Slurm id of the job behind stand-in PID with START: "J" for a plain job, "A_I" for an element (as
// Slurm's commands name it); empty for an element whose start says nothing.
[[nodiscard]] inline std::string job_key(int pid, uint64_t start) {
    if (!is_element_pid(pid)) {
        return std::to_string(job_of(pid));
    }
    int64_t array = 0, index = 0;
    return element_of(start, array, index) ? std::to_string(array) + "_" + std::to_string(index)
                                           : std::string();
}

}  // namespace mpctl::daemon
