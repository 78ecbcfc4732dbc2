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
    r.nonblock = p.get_or<bool>("nonblock", false);
    r.timeout = read_seconds(p, "timeout", false);
    if (r.nonblock && r.timeout) {
        proto::throw_invalid_params("params.timeout: not with nonblock (which never waits)");
    }
    r.lease = read_lease(call);
    r.responder = call.responder;
    ctx.locks.acquire(std::move(r));
}

void lock_release(const SyncContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"path", "token", "pid"});
    std::string path = read_lock_path(p);
    auto token = p.optional<int64_t>("token");
    if (token && *token < 1) {
        proto::throw_invalid_params("params.token: expected a positive integer");
    }
    auto pid = p.optional<int64_t>("pid");
    if (pid && (*pid < 1 || *pid > 4194304)) {
        proto::throw_invalid_params("params.pid: expected a process id (1 to 4194304)");
    }
    auto session = call.responder->session();
    json released =
        ctx.locks.release(path, token, pid ? static_cast<pid_t>(*pid) : peer_pid(call), session.get());
    call.responder->result({{"released", released}});
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
