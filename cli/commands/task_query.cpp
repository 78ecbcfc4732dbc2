// mpctl status / mpctl list: show futures.

#include <algorithm>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/proto/task_status.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

std::vector<proto::TaskStatus> parse_statuses(const json& tasks) {
    std::vector<proto::TaskStatus> out;
    for (const auto& t : tasks) {
        out.push_back(proto::status_from_json(t));
    }
    return out;
}

int status(AppContext& ctx, const std::vector<int64_t>& ids, bool wide) {
    Client client = Client::connect(ctx.global);
    json result = client.call("task.get", {{"ids", ids}});
    const json& tasks = result.at("tasks");
    if (ctx.global.json) {
        for (const auto& t : tasks) {
            print_json(t);
        }
    } else if (tasks.size() == 1) {
        print_status_detail(proto::status_from_json(tasks.front()));
    } else {
        print_status_table(parse_statuses(tasks), wide);
    }
    return exit_code::ok;
}

struct ListOptions {
    TaskFilterOptions filter;
    int64_t limit = 0;
    bool wide = false;
    bool all = false;
};

int list(AppContext& ctx, const ListOptions& o) {
    json params = o.filter.params();
    if (o.limit > 0) {
        params["limit"] = o.limit;
    }
    // Maps that are over are out of the way unless asked for (--all, or naming the map by its label).
    const auto& labels = o.filter.labels;
    bool names_a_map = std::any_of(labels.begin(), labels.end(),
                                   [](const std::string& l) { return l == "map" || l.starts_with("map="); });
    if (!o.all && !names_a_map) {
        params["hide_finished_maps"] = true;
    }
    Client client = Client::connect(ctx.global);
    json result = client.call("task.list", std::move(params));
    if (ctx.global.json) {
        for (const auto& t : result.at("tasks")) {
            print_json(t);
        }
    } else {
        print_status_table(parse_statuses(result.at("tasks")), o.wide);
    }
    return exit_code::ok;
}

}  // namespace

void add_task_query_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    if (wanted(only, "status")) {
        auto* sub = app.add_subcommand("status", "Show tasks: one in detail, several as a table");
        auto ids = std::make_shared<std::vector<std::string>>();
        auto wide = std::make_shared<bool>(false);
        sub->add_option("ids", *ids, "Task ids")->required();
        sub->add_flag("-w,--wide", *wide, "Several tasks: whole commands and names, whatever the width");
        sub->callback([&ctx, ids, wide] {
            auto parsed = parse_ids(*ids);
            ctx.action = [&ctx, parsed, wide] {
                return status(ctx, parsed, *wide);
            };
        });
    }
    if (wanted(only, "list")) {
        auto* sub = app.add_subcommand("list", "List tasks, oldest first");
        auto o = std::make_shared<ListOptions>();
        o->filter.add_to(sub, {"pending", "running", "succeeded", "failed", "cancelled"});
        sub->add_flag("-w,--wide", o->wide, "Whole commands and names, whatever the terminal's width");
        sub->add_flag("-a,--all", o->all, "Also the tasks of maps that are over (label map=...)");
        sub->add_option("--limit", o->limit, "Only the N most recent")
            ->check(whole_number(1, INT64_MAX))
            ->type_name("N");
        sub->callback([&ctx, o] {
            ctx.action = [&ctx, o] {
                return list(ctx, *o);
            };
        });
    }
}

}  // namespace mpctl::cli
