// mpctl pool set|list: size named worker pools and see their load.

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

// A warm pool's part of `pool set`: the worker command (after --) and its limits.
struct WarmOptions {
    bool worker = false;
    bool cold = false;
    int max_tasks = 0;
    double idle_timeout = 0;
    std::vector<std::string> command;
};

// A Slurm pool's part of `pool set`.
struct BackendOptions {
    std::string backend;  // "" keeps the pool's
    std::string partition, account;
    std::vector<std::string> slurm_args;
};

int set(AppContext& ctx, const std::string& name, int workers, const WarmOptions& warm,
        const BackendOptions& backend) {
    Client client = Client::connect(ctx.global);
    json params = {{"name", name}, {"workers", workers}};
    if (warm.cold) {
        params["worker"] = nullptr;
    } else if (warm.worker) {
        params["worker"] = warm.command;
    }
    if (warm.max_tasks > 0) {
        params["max_tasks_per_worker"] = warm.max_tasks;
    }
    if (warm.idle_timeout > 0) {
        params["worker_idle_timeout"] = warm.idle_timeout;
    }
    if (!backend.backend.empty()) {
        params["backend"] = backend.backend;
    }
    if (!backend.partition.empty()) {
        params["partition"] = backend.partition;
    }
    if (!backend.account.empty()) {
        params["account"] = backend.account;
    }
    if (!backend.slurm_args.empty()) {
        params["slurm_args"] = backend.slurm_args;
    }
    json result = client.call("pool.set", params);
    if (ctx.global.json) {
        print_json(result);
    } else {
        bool is_warm = result.value("warm", json(nullptr)).is_object();
        json b = result.value("backend", json(nullptr));
        bool slurm = b.is_object() && b.value("kind", std::string()) == "slurm";
        write_out(1, "pool " + name + ": " + std::to_string(workers) + (is_warm ? " warm" : "") +
                         (slurm ? " Slurm jobs at once" : " workers") + "\n");
    }
    return exit_code::ok;
}

// "3 (pids 101 102 103, 17 tasks)": a warm pool's workers at a glance.
std::string warm_note(const json& warm) {
    if (!warm.is_object()) {
        return "";
    }
    if (warm.value("broken", false)) {
        return "warm, broken: " + warm.value("broken_reason", std::string());
    }
    std::string pids;
    int tasks = 0;
    for (const auto& w : warm.at("worker_processes")) {
        if (w.at("pid").is_number() && w.value("state", std::string()) != "ending") {
            pids += (pids.empty() ? "" : " ") + std::to_string(w.at("pid").get<int>());
        }
        tasks += w.value("tasks", 0);
    }
    return "warm (" + (pids.empty() ? std::string("no workers") : "pids " + pids) + ", " +
           std::to_string(tasks) + " tasks served)";
}

// "slurm (partition debug, 3 jobs)", or "slurm, unreachable: squeue: ...".
std::string slurm_note(const json& backend) {
    if (!backend.is_object() || backend.value("kind", std::string()) != "slurm") {
        return "";
    }
    if (!backend.value("reachable", true)) {
        return "slurm, unreachable: " + backend.value("error", std::string());
    }
    std::string partition = backend.value("partition", std::string());
    return "slurm (" + (partition.empty() ? std::string() : "partition " + partition + ", ") +
           std::to_string(backend.value("jobs", 0)) + " jobs)";
}

int list(AppContext& ctx) {
    Client client = Client::connect(ctx.global);
    json result = client.call("pool.list", json::object());
    if (ctx.global.json) {
        for (const auto& p : result.at("pools")) {
            print_json(p);
        }
        return exit_code::ok;
    }
    std::vector<std::vector<std::string>> rows{{"POOL", "WORKERS", "RUNNING", "PENDING", "WAITING", "NOTE"}};
    for (const auto& p : result.at("pools")) {
        std::string note = p.value("halted", false)      ? "transient, halted"
                           : p.value("transient", false) ? "transient"
                                                         : warm_note(p.value("warm", json(nullptr)));
        if (std::string slurm = slurm_note(p.value("backend", json(nullptr))); !slurm.empty()) {
            note = note.empty() ? slurm : note + ", " + slurm;
        }
        rows.push_back({p.at("name").get<std::string>(), std::to_string(p.at("workers").get<int>()),
                        std::to_string(p.at("running").get<int>()),
                        std::to_string(p.at("pending").get<int>()), std::to_string(p.value("waiting", 0)),
                        note});
    }
    write_out(1, format_table(rows, {false, true, true, true, true, false}));
    return exit_code::ok;
}

}  // namespace

void add_pool_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    (void)only;  // a single subcommand (group)
    auto* pool = app.add_subcommand("pool", "Size worker pools and show their load");
    pool->require_subcommand(1);
    auto* set_cmd = pool->add_subcommand("set", "Set a pool's number of worker slots (kept across restarts)");
    auto name = std::make_shared<std::string>();
    auto workers = std::make_shared<int>(0);
    set_cmd->add_option("name", *name, "Pool name")->required();
    auto* count = set_cmd->add_option("N", *workers, "Worker slots (mpctl pool set NAME 4)")
                      ->check(whole_number(1, 100000))
                      ->type_name("");
    set_cmd->add_option("--workers", *workers, "Worker slots, the same as N")
        ->check(whole_number(1, 100000))
        ->type_name("N")
        ->excludes(count);
    auto warm = std::make_shared<WarmOptions>();
    set_cmd->add_flag(
        "--worker", warm->worker,
        "Make the pool warm: its slots are long-running workers started from the command after --");
    set_cmd->add_flag("--cold", warm->cold, "Make a warm pool start a process per task again");
    set_cmd->add_option("--max-tasks-per-worker", warm->max_tasks, "A worker is replaced after K tasks")
        ->check(whole_number(1, 2147483647))
        ->type_name("K");
    set_cmd->add_option("--worker-idle-timeout", warm->idle_timeout, "A worker idle for S seconds ends")
        ->check(CLI::PositiveNumber)
        ->type_name("S");
    auto backend = std::make_shared<BackendOptions>();
    set_cmd
        ->add_option("--backend", backend->backend,
                     "Where its tasks run: local (this machine) or slurm (as Slurm batch jobs; N bounds "
                     "the jobs out at once)")
        ->check(CLI::IsMember({"local", "slurm"}))
        ->type_name("KIND");
    set_cmd->add_option("--partition", backend->partition, "A Slurm pool's partition (sbatch --partition)")
        ->type_name("P");
    set_cmd->add_option("--account", backend->account, "A Slurm pool's account (sbatch --account)")
        ->type_name("A");
    set_cmd
        ->add_option("--slurm-arg", backend->slurm_args,
                     "One more sbatch option for a Slurm pool's jobs (repeatable: --slurm-arg=--qos=low)")
        ->type_name("ARG")
        ->allow_extra_args(false);
    set_usage_tail(set_cmd,
                   "[--worker [--max-tasks-per-worker K] [--worker-idle-timeout S] -- CMD [ARG...]]");
    set_cmd->footer(
        "Examples: mpctl pool set py 4 --worker -- python3 -m mpctl.worker --preload numpy\n"
        "          mpctl pool set hpc 100 --backend slurm --partition debug --slurm-arg=--qos=low");
    set_cmd->callback([&ctx, name, workers, warm, backend] {
        if (*workers == 0) {
            throw CliError(exit_code::usage, "pool set: how many workers? (mpctl pool set NAME N)");
        }
        if (warm->worker) {
            if (!ctx.has_separator || ctx.after_separator.empty()) {
                throw CliError(exit_code::usage,
                               "pool set --worker: the worker's command goes after -- "
                               "(mpctl pool set NAME N --worker -- CMD ARG...)");
            }
            ctx.separator_used = true;
            warm->command = ctx.after_separator;
        }
        if (warm->worker && warm->cold) {
            throw CliError(exit_code::usage, "pool set: --worker or --cold, not both");
        }
        ctx.action = [&ctx, name, workers, warm, backend] {
            return set(ctx, *name, *workers, *warm, *backend);
        };
    });
    auto* delete_cmd = pool->add_subcommand("delete", "Forget a pool with no unfinished task, and its size");
    auto doomed = std::make_shared<std::string>();
    delete_cmd->add_option("name", *doomed, "Pool name")->required();
    delete_cmd->callback([&ctx, doomed] {
        ctx.action = [&ctx, doomed] {
            Client client = Client::connect(ctx.global);
            json result = client.call("pool.delete", {{"name", *doomed}});
            if (ctx.global.json) {
                print_json(result);
            } else {
                write_out(1, "pool " + *doomed + " deleted\n");
            }
            return exit_code::ok;
        };
    });
    auto* list_cmd = pool->add_subcommand("list", "Show pools: workers, running, pending");
    list_cmd->callback([&ctx] {
        ctx.action = [&ctx] {
            return list(ctx);
        };
    });
}

}  // namespace mpctl::cli
