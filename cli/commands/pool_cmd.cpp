// mpctl pool set|list: size named worker pools and see their load.

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

int set(AppContext& ctx, const std::string& name, int workers) {
    Client client = Client::connect(ctx.global);
    json result = client.call("pool.set", {{"name", name}, {"workers", workers}});
    if (ctx.global.json) {
        print_json(result);
    } else {
        write_out(1, "pool " + name + ": " + std::to_string(workers) + " workers\n");
    }
    return exit_code::ok;
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
                                                         : "";
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
    set_cmd->callback([&ctx, name, workers] {
        if (*workers == 0) {
            throw CliError(exit_code::usage, "pool set: how many workers? (mpctl pool set NAME N)");
        }
        ctx.action = [&ctx, name, workers] {
            return set(ctx, *name, *workers);
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
