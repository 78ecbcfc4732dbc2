// mpctl lock acquire|release|run|list: file locks held by the daemon, seen by flock(1) and filelock, and
// leased to their holders (the daemon's lock.* methods).

#include <cstdlib>
#include <unistd.h>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/child_process.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/cli/task_options.hpp>
#include <mpctl/common/paths.hpp>
#include <mpctl/common/terminal_text.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

struct AcquireOptions {
    bool shared = false;
    bool nonblock = false;
    std::string timeout;
    int64_t owner_pid = 0;
    std::string ttl;
};

std::string absolute(const std::string& path) {
    if (path.empty()) {
        throw CliError(exit_code::usage, "missing lock file path");
    }
    return common::absolute_path(path);
}

json acquire_params(const std::string& path, const AcquireOptions& o) {
    json params = {{"path", absolute(path)}, {"shared", o.shared}};
    if (o.nonblock) {
        if (!o.timeout.empty()) {
            throw CliError(exit_code::usage, "--nonblock and --timeout: one or the other");
        }
        params["nonblock"] = true;
    }
    if (!o.timeout.empty()) {
        params["timeout"] = parse_seconds(o.timeout, "--timeout");
    }
    return params;
}

void add_acquire_options(CLI::App* sub, AcquireOptions& o) {
    sub->add_flag("-s,--shared", o.shared, "A shared (read) lock; default: exclusive");
    sub->add_flag("-n,--nonblock", o.nonblock, "Fail at once (exit 5) if it is held");
    sub->add_option("-w,--timeout", o.timeout, "Give up after S (exit 124): 30, 1.5, 250ms, 2m")
        ->type_name("S");
}

int acquire(AppContext& ctx, const std::string& path, const AcquireOptions& o) {
    json params = acquire_params(path, o);
    // The lease follows the process that ran mpctl (the shell or script), unless told otherwise.
    if (auto pid = lease_pid(ctx.global, o.owner_pid, !o.ttl.empty())) {
        params["pid"] = *pid;
    }
    if (!o.ttl.empty()) {
        params["ttl"] = parse_seconds(o.ttl, "--ttl");
    }
    Client client = Client::connect(ctx.global);
    json grant = client.call("lock.acquire", params);
    if (ctx.global.json) {
        print_json(grant);
    }
    return exit_code::ok;
}

int release(AppContext& ctx, const std::string& path, int64_t token, int64_t owner_pid) {
    json params = {{"path", absolute(path)}};
    if (token != 0) {
        params["token"] = token;
    } else {
        if (auto pid = release_pid(ctx.global, owner_pid)) {
            params["pid"] = *pid;
        }
    }
    Client client = Client::connect(ctx.global);
    json released = client.call("lock.release", params);
    if (ctx.global.json) {
        print_json(released);
    }
    return exit_code::ok;
}

int run(AppContext& ctx, const AcquireOptions& o, std::vector<std::string> words) {
    if (words.empty()) {
        throw CliError(exit_code::usage, "missing lock file path (mpctl lock run PATH -- CMD ARG...)");
    }
    std::string path = words.front();
    words.erase(words.begin());
    if (!words.empty() && words.front() == "--") {
        words.erase(words.begin());
    }
    if (words.empty()) {
        throw CliError(exit_code::usage, "missing command (mpctl lock run PATH -- CMD ARG...)");
    }
    json params = acquire_params(path, o);
    // Held for as long as this connection is open: mpctl outlives its command (child_process.hpp).
    params["lease"] = "connection";
    if (!is_remote(ctx.global)) {
        params["pid"] = static_cast<int64_t>(::getpid());  // names a process of the daemon's machine only
    }
    Client client = Client::connect(ctx.global);
    json grant = client.call("lock.acquire", params);
    if (ctx.global.json) {
        print_json(grant);
    }
    int64_t token = grant.at("token").get<int64_t>();
    int code = run_child(words, {"MPCTL_LOCK_TOKEN=" + std::to_string(token)});
    try {
        (void)client.call("lock.release", {{"path", grant.at("path")}, {"token", token}});
    } catch (const CliError&) {
        // The connection is gone: the daemon released the lock with it.
    }
    return code;
}

std::string holder_line(const json& h) {
    const json& lease = h.at("lease");
    std::string kind = lease.is_object() ? lease.value("kind", std::string("?")) : "?";
    if (kind == "ttl") {
        kind += " until " + lease.value("expires_at", std::string());
    }
    return kind;
}

int list(AppContext& ctx, const std::string& path) {
    json params = json::object();
    if (!path.empty()) {
        params["path"] = absolute(path);
    }
    Client client = Client::connect(ctx.global);
    json result = client.call("lock.list", params);
    if (ctx.global.json) {
        for (const auto& l : result.at("locks")) {
            print_json(l);
        }
        return exit_code::ok;
    }
    std::vector<std::vector<std::string>> rows{{"PATH", "STATE", "MODE", "PID", "TOKEN", "SINCE", "LEASE"}};
    for (const auto& l : result.at("locks")) {
        std::string file = common::terminal_text(l.at("path").get<std::string>());
        for (const auto& h : l.at("holders")) {
            rows.push_back({file, "held", h.at("mode").get<std::string>(),
                            std::to_string(h.at("pid").get<int64_t>()),
                            std::to_string(h.at("token").get<int64_t>()), h.at("since").get<std::string>(),
                            holder_line(h)});
        }
        for (const auto& w : l.at("waiters")) {
            rows.push_back({file, "waiting", w.at("mode").get<std::string>(),
                            std::to_string(w.at("pid").get<int64_t>()), "-", w.at("since").get<std::string>(),
                            holder_line(w)});
        }
        for (const auto& o : l.at("outside")) {
            rows.push_back({file, "held outside", o.at("mode").get<std::string>(),
                            std::to_string(o.at("pid").get<int64_t>()), "-", "-",
                            o.at("kind").get<std::string>()});
        }
    }
    if (rows.size() > 1) {
        write_out(1, format_table(rows, {false, false, false, true, true, false, false}));
    }
    return exit_code::ok;
}

}  // namespace

void add_lock_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    (void)only;  // a single subcommand (group)
    auto* lock = app.add_subcommand(
        "lock", "File locks held by the daemon (flock(2): flock(1) and filelock see them)");
    lock->require_subcommand(1);

    auto* acq = lock->add_subcommand("acquire", "Take a lock on PATH, leased to the calling shell or script");
    auto path = std::make_shared<std::string>();
    auto o = std::make_shared<AcquireOptions>();
    acq->add_option("path", *path, "Lock file (created if missing, never removed)")->required();
    add_acquire_options(acq, *o);
    acq->add_option("--owner-pid", o->owner_pid, "Lease it to process PID (default: mpctl's parent)")
        ->check(whole_number(1, 4194304))
        ->type_name("PID");
    acq->add_option("--ttl", o->ttl, "Lease it for S instead (released then, or by lock release)")
        ->type_name("S");
    acq->footer(
        "The lock is released when its owner exits (SIGKILL too), by `mpctl lock release PATH`, or\n"
        "when its --ttl runs out. Exit 5: held (--nonblock); 124: --timeout; 1: a deadlock, refused.");
    acq->callback([&ctx, path, o] {
        ctx.action = [&ctx, path, o] {
            return acquire(ctx, *path, *o);
        };
    });

    auto* rel = lock->add_subcommand("release", "Give back a lock on PATH");
    auto rel_path = std::make_shared<std::string>();
    auto token = std::make_shared<int64_t>(0);
    auto rel_owner = std::make_shared<int64_t>(0);
    rel->add_option("path", *rel_path, "Lock file")->required();
    rel->add_option("--token", *token, "The grant with this fencing token (default: the owner's)")
        ->check(whole_number(1, INT64_MAX))
        ->type_name("T");
    rel->add_option("--owner-pid", *rel_owner, "The lock held for process PID (default: mpctl's parent)")
        ->check(whole_number(1, 4194304))
        ->type_name("PID");
    rel->callback([&ctx, rel_path, token, rel_owner] {
        ctx.action = [&ctx, rel_path, token, rel_owner] {
            return release(ctx, *rel_path, *token, *rel_owner);
        };
    });

    auto* run_cmd = lock->add_subcommand("run", "Hold a lock on PATH while CMD runs; exit with CMD's code");
    auto run_o = std::make_shared<AcquireOptions>();
    add_acquire_options(run_cmd, *run_o);
    run_cmd->prefix_command();
    run_cmd->fallthrough(false);
    add_global_options(*run_cmd, ctx.global);
    set_usage_tail(run_cmd, "PATH [--] CMD [ARG...]");
    run_cmd->footer(
        "CMD gets the grant's fencing token as MPCTL_LOCK_TOKEN. Example: mpctl lock run /tmp/db.lock -- "
        "make install");
    run_cmd->callback([&ctx, run_cmd, run_o] {
        auto words = command_words(run_cmd, ctx);
        ctx.action = [&ctx, run_o, words] {
            return run(ctx, *run_o, words);
        };
    });

    auto* ls =
        lock->add_subcommand("list", "Locks held and waited for, and who holds them (outside mpctl too)");
    auto ls_path = std::make_shared<std::string>();
    ls->add_option("path", *ls_path, "Only this file (also shows locks that processes outside mpctl hold)");
    ls->callback([&ctx, ls_path] {
        ctx.action = [&ctx, ls_path] {
            return list(ctx, *ls_path);
        };
    });
}

}  // namespace mpctl::cli
