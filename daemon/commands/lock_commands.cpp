// The lock family: lock.acquire, lock.release, lock.list (sync/lock_table.hpp does the locking).

#include <filesystem>

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/sync_context.hpp>
#include <mpctl/daemon/commands/sync_params.hpp>
#include <mpctl/daemon/server/session.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

// params.path: an absolute path, lexically normal (/a//b/../c is /a/c), so that one file has one name.
std::string read_lock_path(const proto::Params& p) {
    std::string path = p.required<std::string>("path");
    if (path.empty() || path.front() != '/') {
        proto::throw_invalid_params("params.path: expected an absolute path");
    }
    return std::filesystem::path(path).lexically_normal().string();
}

void lock_acquire(const SyncContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"path", "shared", "nonblock", "timeout", "pid", "lease", "ttl"});
    LockTable::Request r;
    r.path = read_lock_path(p);
    r.shared = p.get_or<bool>("shared", false);
    read_wait(call, r);
    ctx.locks.acquire(std::move(r));
}

void lock_release(const SyncContext& ctx, Call& call) {
    call.params.reject_unknown({"path", "token", "pid"});
    release_holdings(ctx, call, read_lock_path(call.params), false);
}

void lock_list(const SyncContext& ctx, Call& call) {
    call.params.reject_unknown({"path"});
    std::optional<std::string> path;
    if (call.params.optional<std::string>("path")) {
        path = read_lock_path(call.params);
    }
    call.responder->result({{"locks", ctx.locks.list(path)}});
}

}  // namespace

void register_lock_commands(Registry& r, const SyncContext& ctx) {
    r.add("lock.acquire", [ctx](Call& c) { lock_acquire(ctx, c); });
    r.add("lock.release", [ctx](Call& c) { lock_release(ctx, c); });
    r.add("lock.list", [ctx](Call& c) { lock_list(ctx, c); });
}

}  // namespace mpctl::daemon
