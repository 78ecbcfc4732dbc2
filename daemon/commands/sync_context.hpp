#pragma once
// SyncContext: what the sync family (lock.*; sem.*, event.*, barrier.* next) works with: the tables of
// what clients hold, which lease their holdings through the LeaseRegistry. Loop thread only.

#include <mpctl/daemon/sync/lock_table.hpp>

namespace mpctl::daemon {

struct SyncContext {
    LockTable& locks;
};

}  // namespace mpctl::daemon
