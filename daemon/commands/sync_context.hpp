#pragma once
// SyncContext: what the sync family (lock.*, sem.*, event.*, barrier.*) works with: the tables of what
// clients hold (which lease their holdings through the LeaseRegistry) and wait for. Loop thread only.

#include <mpctl/daemon/sync/barrier_table.hpp>
#include <mpctl/daemon/sync/event_table.hpp>
#include <mpctl/daemon/sync/lock_table.hpp>

namespace mpctl::daemon {

struct SyncContext {
    LockTable& locks;  // file locks and semaphores
    EventTable& events;
    BarrierTable& barriers;
};

}  // namespace mpctl::daemon
