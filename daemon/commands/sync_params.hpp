#pragma once
// The params the sync family's methods share (lock.*, sem.*, event.*, barrier.*): seconds, names, and whom
// a holding is leased to. Each throws invalid_params naming the field.

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>

#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/sync_context.hpp>
#include <mpctl/daemon/leases/lease_registry.hpp>

namespace mpctl::daemon {

// params.KEY in seconds (POSITIVE: more than 0, else 0 or more; at most a year), if given.
[[nodiscard]] std::optional<std::chrono::milliseconds> read_seconds(const proto::Params& p, const char* key,
                                                                    bool positive);
// params.name: 1-64 letters, digits, '_', '-', '.' (a semaphore's, event's or barrier's).
[[nodiscard]] std::string read_sync_name(const proto::Params& p);
// The pid of the client's process (SO_PEERCRED), 0 if its connection is gone.
[[nodiscard]] pid_t peer_pid(const Call& call);
// params.pid, the process a holding is for (default: the client's).
[[nodiscard]] pid_t read_holder_pid(const Call& call);
// params.pid, params.lease and params.ttl.
[[nodiscard]] LeaseSpec read_lease(const Call& call);

// params.nonblock and params.timeout, which a request may not both give.
struct WaitParams {
    bool nonblock = false;
    std::optional<std::chrono::milliseconds> timeout;
};
[[nodiscard]] WaitParams read_nonblock_or_timeout(const proto::Params& p);

// What lock.acquire and sem.acquire share: params.nonblock, params.timeout (not both) and the lease, into R,
// which is to answer the call.
void read_wait(const Call& call, LockTable::Request& r);
// What lock.release and sem.release share: the holdings of KEY with params.token, or else for params.pid
// (ONE: the oldest only), given back; the call answered with them.
void release_holdings(const SyncContext& ctx, Call& call, const std::string& key, bool one);

}  // namespace mpctl::daemon
