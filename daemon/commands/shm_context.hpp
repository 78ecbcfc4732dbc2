#pragma once
// ShmContext: what the shm family (shm.*) works with: the registry of segments, which leases them through
// the LeaseRegistry. Loop thread only.

#include <mpctl/daemon/shm/segment_registry.hpp>

namespace mpctl::daemon {

struct ShmContext {
    SegmentRegistry& segments;
};

}  // namespace mpctl::daemon
