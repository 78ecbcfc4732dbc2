// The sync family past file locks: sem.acquire/release/list (semaphores share the LockTable with file
// locks: leases, FIFO, deadlock detection), event.set/clear/wait/list, barrier.wait/list.

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/sync_context.hpp>
#include <mpctl/daemon/commands/sync_params.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

constexpr int64_t k_max_count = 1000000;  // a semaphore's limit, a barrier's parties

int read_count(const proto::Params& p, const char* key) {
    auto n = p.required<int64_t>(key);
    if (n < 1 || n > k_max_count) {
        proto::throw_invalid_params(std::string("params.") + key + ": must be between 1 and 1000000");
    }
    return static_cast<int>(n);
}

std::optional<std::string> read_optional_name(const proto::Params& p) {
    if (!p.optional<std::string>("name")) {
        return std::nullopt;
    }
    return read_sync_name(p);
}

void sem_acquire(const SyncContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"name", "limit", "nonblock", "timeout", "pid", "lease", "ttl"});
    LockTable::Request r;
    r.path = read_sync_name(p);
    r.limit = read_count(p, "limit");
    read_wait(call, r);
    ctx.locks.acquire(std::move(r));
}

void sem_release(const SyncContext& ctx, Call& call) {
    call.params.reject_unknown({"name", "token", "pid"});
    release_holdings(ctx, call, read_sync_name(call.params), true);
}

void event_set_or_clear(const SyncContext& ctx, Call& call, bool set) {
    call.params.reject_unknown({"name"});
    std::string name = read_sync_name(call.params);
    call.responder->result(set ? ctx.events.set(name) : ctx.events.clear(name));
}

void event_wait(const SyncContext& ctx, Call& call) {
    call.params.reject_unknown({"name", "timeout"});
    std::string name = read_sync_name(call.params);
    auto timeout = read_seconds(call.params, "timeout", false);
    ctx.events.wait(name, timeout, call.responder);
}

void barrier_wait(const SyncContext& ctx, Call& call) {
    call.params.reject_unknown({"name", "parties", "timeout"});
    std::string name = read_sync_name(call.params);
    int parties = read_count(call.params, "parties");
    auto timeout = read_seconds(call.params, "timeout", false);
    ctx.barriers.wait(name, parties, timeout, peer_pid(call), call.responder);
}

}  // namespace

void register_sync_commands(Registry& r, const SyncContext& ctx) {
    r.add("sem.acquire", [ctx](Call& c) { sem_acquire(ctx, c); });
    r.add("sem.release", [ctx](Call& c) { sem_release(ctx, c); });
    r.add("sem.list", [ctx](Call& c) {
        c.params.reject_unknown({"name"});
        c.responder->result({{"semaphores", ctx.locks.list_semaphores(read_optional_name(c.params))}});
    });
    r.add("event.set", [ctx](Call& c) { event_set_or_clear(ctx, c, true); });
    r.add("event.clear", [ctx](Call& c) { event_set_or_clear(ctx, c, false); });
    r.add("event.wait", [ctx](Call& c) { event_wait(ctx, c); });
    r.add("event.list", [ctx](Call& c) {
        c.params.reject_unknown({"name"});
        c.responder->result({{"events", ctx.events.list(read_optional_name(c.params))}});
    });
    r.add("barrier.wait", [ctx](Call& c) { barrier_wait(ctx, c); });
    r.add("barrier.list", [ctx](Call& c) {
        c.params.reject_unknown({"name"});
        c.responder->result({{"barriers", ctx.barriers.list(read_optional_name(c.params))}});
    });
}

}  // namespace mpctl::daemon
