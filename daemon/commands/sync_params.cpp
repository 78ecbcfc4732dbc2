#include <cmath>

#include <mpctl/daemon/commands/sync_params.hpp>
#include <mpctl/daemon/server/session.hpp>
#include <mpctl/proto/task_spec.hpp>

namespace mpctl::daemon {

namespace {
constexpr double k_max_seconds = 365.0 * 24 * 3600;
constexpr int64_t k_max_pid = 4194304;  // PID_MAX_LIMIT
}  // namespace

std::optional<std::chrono::milliseconds> read_seconds(const proto::Params& p, const char* key,
                                                      bool positive) {
    auto s = p.optional<double>(key);
    if (!s) {
        return std::nullopt;
    }
    if (!(std::isfinite(*s) && (positive ? *s > 0 : *s >= 0) && *s <= k_max_seconds)) {
        proto::throw_invalid_params(std::string("params.") + key + ": expected seconds, " +
                                    (positive ? "more than 0" : "0 or more") + " and at most a year");
    }
    return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(*s * 1000)));
}

std::string read_sync_name(const proto::Params& p) {
    std::string name = p.required<std::string>("name");
    // The same alphabet as pool names: safe in a table, a file name and a shell word.
    if (!proto::valid_pool_name(name)) {
        proto::throw_invalid_params("params.name: 1-64 characters of letters, digits, '_', '-' and '.'");
    }
    return name;
}

pid_t peer_pid(const Call& call) {
    auto session = call.responder->session();
    return session ? session->peer().pid : 0;
}

pid_t read_holder_pid(const Call& call) {
    auto pid = call.params.optional<int64_t>("pid");
    if (pid && (*pid < 1 || *pid > k_max_pid)) {
        proto::throw_invalid_params("params.pid: expected a process id (1 to 4194304)");
    }
    return pid ? static_cast<pid_t>(*pid) : peer_pid(call);
}

LeaseSpec read_lease(const Call& call) {
    const auto& p = call.params;
    LeaseSpec spec;
    spec.pid = read_holder_pid(call);
    std::string kind = p.get_or<std::string>("lease", "process");
    auto ttl = read_seconds(p, "ttl", true);
    if (kind == "process") {
        spec.kind = ttl ? LeaseSpec::Kind::ttl : LeaseSpec::Kind::process;
        if (!ttl && call.peer.remote && !p.has("pid")) {
            throw proto::RequestError(proto::ErrorCode::refused,
                                      "a remote client has no process on this machine to lease to: ask for "
                                      "lease \"connection\" or a ttl (or name a pid of this machine)");
        }
    } else if (kind == "connection") {
        if (ttl) {
            proto::throw_invalid_params(
                "params.ttl: a connection lease has no time limit (lease is \"connection\")");
        }
        spec.kind = LeaseSpec::Kind::connection;
    } else {
        proto::throw_invalid_params("params.lease: expected \"process\" or \"connection\"");
    }
    if (ttl) {
        spec.ttl = *ttl;
    }
    return spec;
}

WaitParams read_nonblock_or_timeout(const proto::Params& p) {
    WaitParams w{p.get_or<bool>("nonblock", false), read_seconds(p, "timeout", false)};
    if (w.nonblock && w.timeout) {
        proto::throw_invalid_params("params.timeout: not with nonblock (which never waits)");
    }
    return w;
}

void read_wait(const Call& call, LockTable::Request& r) {
    auto wait = read_nonblock_or_timeout(call.params);
    r.nonblock = wait.nonblock;
    r.timeout = wait.timeout;
    r.lease = read_lease(call);
    r.responder = call.responder;
}

void release_holdings(const SyncContext& ctx, Call& call, const std::string& key, bool one) {
    auto token = call.params.optional<int64_t>("token");
    if (token && *token < 1) {
        proto::throw_invalid_params("params.token: expected a positive integer");
    }
    pid_t pid = read_holder_pid(call);
    auto session = call.responder->session();
    call.responder->result({{"released", ctx.locks.release(key, token, pid, session.get(), one)}});
}

}  // namespace mpctl::daemon
