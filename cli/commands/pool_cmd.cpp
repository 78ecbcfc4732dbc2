// mpctl pool set|list: size named worker pools and see their load.

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

std::string pool_row(const json& p, size_t width) {
    std::string name = p.at("name").get<std::string>();
    name.resize(std::max(width, name.size()), ' ');
    return name + "  " + std::to_string(p.at("workers").get<int>()) + "\t" +
           std::to_string(p.at("running").get<int>()) + "\t" + std::to_string(p.at("pending").get<int>()) +
           "\t" + std::to_string(p.value("waiting", 0)) + "\n";
}

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
    size_t width = 4;
    for (const auto& p : result.at("pools")) {
        width = std::max(width, p.at("name").get<std::string>().size());
    }
    std::string header = "POOL";
    header.resize(width, ' ');
    std::string out = header + "  WORKERS\tRUNNING\tPENDING\tWAITING\n";
    for (const auto& p : result.at("pools")) {
        out += pool_row(p, width);
    }
    write_out(1, out);
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
    set_cmd->add_option("--workers", *workers, "Worker slots")->required()->check(CLI::Range(1, 100000));
    set_cmd->callback([&ctx, name, workers] {
        ctx.action = [&ctx, name, workers] {
            return set(ctx, *name, *workers);
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
