#pragma once
// MappingCache: the segments that list requests (shm.list_get, shm.list_set) read and write, kept mapped
// from one request to the next. Opening, mapping and unmapping a segment (five syscalls and the page faults
// of a fresh mapping) cost more than the rest of a list_get: one item at a time from one client ran at 14k/s
// against 20k/s for the simplest request.
//
// A mapping stays true to the name: each use checks with one stat() that the name still names the file
// mapped, at the size mapped, and maps the file it names now otherwise. A mapping keeps its file's memory
// even after the file is unlinked (by Python's resource tracker, say), so one unused since the last sweep
// (every second) is let go, and one the registry unlinks or forgets is let go at once. Loop thread only.

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <sys/types.h>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::daemon {

class MappingCache {
  public:
    explicit MappingCache(Timers& timers) : timers_(timers) {}
    ~MappingCache();
    MappingCache(const MappingCache&) = delete;
    MappingCache& operator=(const MappingCache&) = delete;

    struct View {
        char* data = nullptr;  // null for a segment of 0 bytes
        size_t size = 0;
    };
    // Segment NAME mapped shared, read-write if WRITABLE (a read-only one otherwise, or a read-write one
    // already mapped); the error of opening or mapping it otherwise (err ENOENT: no such segment). The view
    // is good until the next call.
    [[nodiscard]] common::Result<View> map(const std::string& name, bool writable);
    // Lets go of NAME's mapping, if any.
    void forget(const std::string& name);
    [[nodiscard]] size_t size() const { return entries_.size(); }

    static constexpr size_t k_max_entries = 64;
    static constexpr std::chrono::milliseconds k_sweep_every{1000};

  private:
    struct Entry {
        dev_t dev = 0;
        ino_t ino = 0;
        size_t size = 0;
        bool writable = false;
        char* data = nullptr;
        bool used = true;  // since the last sweep
    };
    static void unmap(Entry& e);
    void sweep();
    void arm_sweep();

    Timers& timers_;
    std::map<std::string, Entry> entries_;
    TimerId sweep_timer_ = 0;
};

}  // namespace mpctl::daemon
