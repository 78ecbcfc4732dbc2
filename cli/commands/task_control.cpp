// mpctl cancel / kill: stop futures. mpctl remove / clean: forget finished ones, rows and output files.
// mpctl restart: run finished ones again, as new tasks.

#include <cstdio>
#include <map>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/common/signals.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

int cancel(AppContext& ctx, const std::vector<std::string>& args, bool force) {
    auto ids = parse_ids(args);
    Client client = Client::connect(ctx.global);
    json result = client.call("task.cancel", {{"ids", ids}, {"force", force}});
    std::vector<int64_t> refused;
    for (const auto& r : result.at("results")) {
        std::string outcome = r.at("outcome").get<std::string>();
        if (ctx.global.json) {
            print_json(r);
        } else if (outcome == "running") {
            std::fprintf(stderr, "mpctl: task %lld is running; --force terminates it\n",
                         static_cast<long long>(r.at("id").get<int64_t>()));
        } else if (outcome == "finished") {
            write_out(1, std::to_string(r.at("id").get<int64_t>()) + " already " +
                             r.at("state").get<std::string>() + "\n");
        } else {
            write_out(1, std::to_string(r.at("id").get<int64_t>()) + " " + outcome + "\n");
        }
        if (outcome == "running") {
            refused.push_back(r.at("id").get<int64_t>());
        }
    }
    // Like future.cancel() returning False: a running task was left alone.
    return refused.empty() ? exit_code::ok : exit_code::failure;
}

int kill(AppContext& ctx, const std::string& id_arg, const std::string& signal) {
    int64_t id = parse_id(id_arg);
    auto signo = common::parse_signal(signal);
    if (!signo) {
        throw CliError(exit_code::usage,
                       "--signal: unknown signal '" + signal + "' (e.g. TERM, INT, KILL, HUP, 9)");
    }
    Client client = Client::connect(ctx.global);
    json result = client.call("task.signal", {{"id", id}, {"signal", *signo}});
    if (ctx.global.json) {
        print_json(result);
    }
    return exit_code::ok;
}

// Prints what task.remove or task.clean removed: the ids (or the JSON), and a count on a terminal.
int report_removed(AppContext& ctx, const json& result) {
    const json& removed = result.at("removed");
    if (ctx.global.json) {
        print_json(result);
    } else {
        std::string out;
        for (const auto& id : removed) {
            out += std::to_string(id.get<int64_t>()) + " removed\n";
        }
        write_out(1, out);
    }
    return exit_code::ok;
}

// Prints the new ids, one per line in the order given (for `mpctl wait $(mpctl restart 3 4)`).
int restart(AppContext& ctx, const std::vector<std::string>& args) {
    auto ids = parse_ids(args);
    Client client = Client::connect(ctx.global);
    json result = client.call("task.restart", {{"ids", ids}});
    if (ctx.global.json) {
        print_json(result);
        return exit_code::ok;
    }
    std::map<int64_t, int64_t> new_id;
    for (const auto& r : result.at("restarted")) {
        new_id[r.at("id").get<int64_t>()] = r.at("new_id").get<int64_t>();
    }
    std::string out;
    for (int64_t id : ids) {
        out += std::to_string(new_id.at(id)) + "\n";
    }
    write_out(1, out);
    return exit_code::ok;
}

struct CleanOptions {
    TaskFilterOptions filter;
    std::string older_than;
};

int clean(AppContext& ctx, const CleanOptions& o) {
    json params = o.filter.params();
    if (!o.older_than.empty()) {
        params["older_than"] = parse_seconds(o.older_than, "--older-than");
    }
    Client client = Client::connect(ctx.global);
    return report_removed(ctx, client.call("task.clean", params));
}

}  // namespace

void add_task_control_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    if (wanted(only, "cancel")) {
        auto* sub =
            app.add_subcommand("cancel", "Cancel pending tasks; --force also terminates running ones");
        auto ids = std::make_shared<std::vector<std::string>>();
        auto force = std::make_shared<bool>(false);
        sub->add_option("ids", *ids, "Task ids")->required();
        sub->add_flag("--force", *force, "Terminate running tasks too (SIGTERM, then SIGKILL)");
        sub->callback([&ctx, ids, force] {
            ctx.action = [&ctx, ids, force] {
                return cancel(ctx, *ids, *force);
            };
        });
    }
    if (wanted(only, "remove")) {
        auto* sub = app.add_subcommand("remove", "Forget finished tasks: their rows and output files");
        auto ids = std::make_shared<std::vector<std::string>>();
        sub->add_option("ids", *ids, "Task ids")->required();
        sub->callback([&ctx, ids] {
            ctx.action = [&ctx, ids] {
                Client client = Client::connect(ctx.global);
                return report_removed(ctx, client.call("task.remove", {{"ids", parse_ids(*ids)}}));
            };
        });
    }
    if (wanted(only, "restart")) {
        auto* sub = app.add_subcommand(
            "restart",
            "Run finished tasks again as new tasks (same command, env, options); print the new ids");
        auto ids = std::make_shared<std::vector<std::string>>();
        sub->add_option("ids", *ids, "Task ids")->required();
        sub->footer(
            "The new task is labelled restart_of=ID; the old one keeps its id, status and output. Tasks "
            "restarted together that waited for each other (--after) wait for each other's restarts.");
        sub->callback([&ctx, ids] {
            ctx.action = [&ctx, ids] {
                return restart(ctx, *ids);
            };
        });
    }
    if (wanted(only, "clean")) {
        auto* sub = app.add_subcommand("clean", "Forget finished tasks that match (default: all of them)");
        auto o = std::make_shared<CleanOptions>();
        o->filter.add_to(sub, {"succeeded", "failed", "cancelled"});
        sub->add_option("--older-than", o->older_than, "Only tasks that finished longer ago (30s, 5m, 7d)");
        sub->callback([&ctx, o] {
            ctx.action = [&ctx, o] {
                return clean(ctx, *o);
            };
        });
    }
    if (wanted(only, "kill")) {
        auto* sub = app.add_subcommand("kill", "Send a signal to a running task's process group");
        auto id = std::make_shared<std::string>();
        auto signal = std::make_shared<std::string>("TERM");
        sub->add_option("id", *id, "Task id")->required();
        sub->add_option("-s,--signal", *signal, "Signal name or number (default TERM)");
        sub->callback([&ctx, id, signal] {
            ctx.action = [&ctx, id, signal] {
                return kill(ctx, *id, *signal);
            };
        });
    }
}

}  // namespace mpctl::cli
