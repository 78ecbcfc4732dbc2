#pragma once
// A shared-memory segment as one row of the journal's segments table (shm/segment_registry.hpp): enough to
// find it again after a crash of the daemon (the file it was, by device and inode) and to know whether its
// lease still holds (the owner, by pid and start time, against pid reuse; or when its time runs out).

#include <cstdint>
#include <string>

namespace mpctl::daemon {

struct SegmentRow {
    std::string name;
    uint64_t dev = 0;
    uint64_t ino = 0;
    uint64_t size = 0;
    uint32_t mode = 0;
    int64_t created_at_ms = 0;
    std::string lease;  // "" (persist), "process", "connection" or "ttl"
    int64_t pid = 0;
    uint64_t pid_start = 0;     // /proc/PID/stat's start time of the owner, process leases
    int64_t expires_at_ms = 0;  // ttl leases
};

}  // namespace mpctl::daemon
