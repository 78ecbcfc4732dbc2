// mpctl daemon start|stop|status|upgrade: the daemon's lifecycle.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <poll.h>
#include <unistd.h>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/common/sys.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

struct StopOptions {
    bool wait = false;
    bool now = false;
    bool cancel_pending = false;
    std::string kill_after;
};

int start(AppContext& ctx) {
    bool was_running = Client::try_connect(ctx.global).has_value();
    GlobalOptions opts = ctx.global;
    opts.no_autostart = false;  // starting it is the point
    Client client = Client::connect(opts);
    json info = client.call("daemon.status", json::object());
    if (ctx.global.json) {
        print_json(info);
    } else {
        write_out(1, std::string(was_running ? "mpctld is already running" : "mpctld started") + " (pid " +
                         std::to_string(info.at("pid").get<int64_t>()) + ", socket " +
                         info.at("socket").get<std::string>() + ")\n");
    }
    return exit_code::ok;
}

// Waits (up to a generous deadline) until process PID has exited, without polling in a loop.
void wait_for_exit(int pid) {
    auto pidfd = common::pidfd_open(pid);
    if (!pidfd) {
        return;  // already gone
    }
    pollfd p{pidfd->get(), POLLIN, 0};
    while (::poll(&p, 1, 60'000) < 0 && errno == EINTR) {
    }
}

// The same for a remote daemon, whose pid is not one of this machine: until it closes the connection.
void wait_for_close(Client& client) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
        while (client.next_message()) {
        }
        if (!client.buffered()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{client.fd(), POLLIN, 0};
            int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
            if (n == 0) {
                return;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
        }
        if (!client.read_available()) {
            return;
        }
    }
}

int stop(AppContext& ctx, const StopOptions& o) {
    auto client = Client::try_connect(ctx.global);
    if (!client) {
        if (!ctx.global.json) {
            write_out(1, "mpctld is not running\n");
        } else {
            print_json({{"stopped", false}, {"running", false}});
        }
        return exit_code::ok;
    }
    json info = client->call("daemon.status", json::object());
    int pid = info.at("pid").get<int>();
    int64_t running = info.at("tasks").value("running", int64_t{0});
    if (!o.now && running > 0 && ::isatty(2) == 1 && !ctx.global.json) {
        // It may be a long wait: say what for, and how not to.
        std::fprintf(
            stderr, "mpctl: waiting for %lld running task%s to finish (mpctl daemon stop --now stops them)\n",
            static_cast<long long>(running), running == 1 ? "" : "s");
    }
    json params = {{"now", o.now}, {"cancel_pending", o.cancel_pending}};
    if (!o.kill_after.empty()) {
        params["kill_after"] = parse_seconds(o.kill_after, "--kill-after");
    }
    try {
        client->call("daemon.stop", params);
    } catch (const CliError& e) {
        // The daemon may close the connection as it exits; that is the outcome we asked for.
        if (e.error().is_object()) {
            throw;
        }
    }
    if (client->remote()) {
        wait_for_close(*client);
    } else {
        wait_for_exit(pid);
    }
    if (ctx.global.json) {
        print_json({{"stopped", true}, {"pid", pid}});
    } else {
        write_out(1, "mpctld stopped (pid " + std::to_string(pid) + ")\n");
    }
    return exit_code::ok;
}

// The daemon execs its binary in place (tasks untouched), then serves again with the same pid: done once
// the new image answers, which a connection made meanwhile waits for in the socket's backlog.
int upgrade(AppContext& ctx) {
    auto client = Client::try_connect(ctx.global);
    if (!client) {
        throw CliError(exit_code::no_daemon, "mpctld is not running");
    }
    json info = client->call("daemon.status", json::object());
    const int64_t upgrades = info.value("upgrades", int64_t{0});
    json answer = client->call("daemon.upgrade", json::object());
    const std::string binary = answer.value("binary", std::string());
    // Asked until the new image answers: the old one closes its connections before the exec, and a
    // connection that reached it just before that is closed unanswered.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
        try {
            auto next = Client::try_connect(ctx.global);
            if (next) {
                json now = next->call("daemon.status", json::object());
                if (now.value("upgrades", int64_t{0}) > upgrades) {
                    info = std::move(now);
                    break;
                }
            }
        } catch (const CliError& e) {
            if (e.error().is_object()) {
                throw;  // an answer, not a closed connection
            }
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            throw CliError(exit_code::no_daemon,
                           "mpctld did not answer within 60 s of the upgrade (its log says why)");
        }
        ::usleep(20'000);
    }
    if (ctx.global.json) {
        print_json(info);
    } else {
        write_out(1, "mpctld upgraded to " + info.at("version").get<std::string>() + " (pid " +
                         std::to_string(info.at("pid").get<int64_t>()) +
                         (binary.empty() ? std::string() : ", " + binary) + ")\n");
    }
    return exit_code::ok;
}

int status(AppContext& ctx) {
    auto client = Client::try_connect(ctx.global);
    if (!client) {
        throw CliError(exit_code::no_daemon, "mpctld is not running");
    }
    json info = client->call("daemon.status", json::object());
    if (ctx.global.json) {
        print_json(info);
        return exit_code::ok;
    }
    const json& t = info.at("tasks");
    std::string out;
    out += "mpctld " + info.at("version").get<std::string>() + ", pid " +
           std::to_string(info.at("pid").get<int64_t>()) +
           (info.value("stopping", false) ? " (stopping)" : "") + "\n";
    out += "socket:     " + info.at("socket").get<std::string>() + "\n";
    out += "state dir:  " + info.at("state_dir").get<std::string>() + "\n";
    out += "since:      " + info.at("started_at").get<std::string>() + " (" +
           human_duration(info.at("uptime_ms").get<int64_t>()) + ")\n";
    out += "workers:    " + std::to_string(info.at("workers").get<int>()) + " (default pool)\n";
    out += "durability: " + info.at("durability").get<std::string>() + "\n";
    // A supervised daemon (issue 20): who restarts it, how often it did, and what it took back.
    if (const json supervisor = info.value("supervisor", json()); supervisor.is_object()) {
        out += "supervisor: pid " + std::to_string(supervisor.value("pid", int64_t{0})) + ", " +
               std::to_string(supervisor.value("restarts", 0)) + " restarts\n";
    }
    if (int64_t upgrades = info.value("upgrades", int64_t{0}); upgrades > 0) {
        out += "upgrades:   " + std::to_string(upgrades) + "\n";
    }
    if (const json readopted = info.value("readopted", json::array()); !readopted.empty()) {
        std::string ids;
        for (const auto& id : readopted) {
            ids += (ids.empty() ? "" : " ") + std::to_string(id.get<int64_t>());
        }
        out += "readopted:  " + ids + " (left running by the daemon before this one)\n";
    }
    out += "tasks:      " + std::to_string(t.value("running", 0)) + " running, " +
           std::to_string(t.value("pending", 0)) + " pending, " + std::to_string(t.value("succeeded", 0)) +
           " succeeded, " + std::to_string(t.value("failed", 0)) + " failed, " +
           std::to_string(t.value("cancelled", 0)) + " cancelled\n";
    write_out(1, out);
    return exit_code::ok;
}

}  // namespace

void add_daemon_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    (void)only;  // a single subcommand (group)
    auto* daemon = app.add_subcommand("daemon", "Start, stop or inspect mpctld");
    daemon->require_subcommand(1);
    auto* start_cmd = daemon->add_subcommand("start", "Start mpctld unless it is running");
    start_cmd->callback([&ctx] {
        ctx.action = [&ctx] {
            return start(ctx);
        };
    });

    auto* stop_cmd = daemon->add_subcommand(
        "stop", "Stop mpctld: no new task starts, running ones finish, pending ones stay queued");
    auto o = std::make_shared<StopOptions>();
    stop_cmd->add_flag("--wait", o->wait, "Let running tasks finish (the default)");
    stop_cmd->add_flag("--now", o->now,
                       "Terminate running tasks (SIGTERM, then SIGKILL); they become cancelled");
    stop_cmd->add_flag("--cancel-pending", o->cancel_pending, "Also cancel the queued tasks");
    stop_cmd->add_option("--kill-after", o->kill_after, "With --now: SIGKILL this long after SIGTERM");
    stop_cmd->callback([&ctx, o] {
        if (o->wait && o->now) {
            throw CLI::ValidationError("--wait and --now exclude each other");
        }
        ctx.action = [&ctx, o] {
            return stop(ctx, *o);
        };
    });

    auto* upgrade_cmd = daemon->add_subcommand(
        "upgrade", "Re-exec mpctld in place (a new binary at the same path); running tasks keep running");
    upgrade_cmd->callback([&ctx] {
        ctx.action = [&ctx] {
            return upgrade(ctx);
        };
    });

    auto* status_cmd = daemon->add_subcommand("status", "Show whether mpctld runs, and its counts");
    status_cmd->callback([&ctx] {
        ctx.action = [&ctx] {
            return status(ctx);
        };
    });
}

}  // namespace mpctl::cli
