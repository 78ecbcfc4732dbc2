// mpctl logs: print a task's captured output; --follow streams it until the task ends.

#include <optional>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/common/base64.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

struct LogsOptions {
    std::string id;
    bool stderr_only = false;
    bool both = false;
    bool follow = false;
    std::optional<int> stage;
    std::optional<int64_t> tail;
};

int logs(AppContext& ctx, const LogsOptions& o) {
    int64_t id = parse_id(o.id);
    Client client = Client::connect(ctx.global);
    const char* stream = o.both ? "both" : (o.stderr_only || o.stage ? "stderr" : "stdout");
    if (o.stage && o.both) {
        throw CliError(exit_code::usage, "--stage: a stage has only its stderr (stdout is the last stage's)");
    }
    json params = {{"id", id}, {"stream", stream}, {"follow", o.follow}};
    if (o.stage) {
        params["stage"] = *o.stage;
    }
    if (o.tail) {
        params["tail"] = *o.tail;
    }
    json result = client.call("task.logs", params, [&](const std::string& method, const json& params) {
        if (method != "task.output") {
            return;
        }
        if (ctx.global.json) {
            print_json(params);  // base64 data, one chunk per line
            return;
        }
        if (auto data = common::base64_decode(params.value("data", std::string()))) {
            // One stream asked for goes to stdout, to be piped; with --both each to its own.
            bool to_stderr = o.both && params.value("stream", std::string()) == "stderr";
            write_out(to_stderr ? 2 : 1, *data);
        }
    });
    (void)result;
    return exit_code::ok;
}

}  // namespace

void add_task_logs_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    (void)only;  // a single subcommand (group)
    auto* sub = app.add_subcommand("logs", "Print a task's captured stdout (or --stderr)");
    auto o = std::make_shared<LogsOptions>();
    sub->add_option("id", o->id, "Task id")->required();
    sub->add_flag("--stderr", o->stderr_only, "Its stderr instead of its stdout");
    sub->add_flag("--both", o->both, "Both: stdout to stdout, stderr to stderr");
    sub->add_flag("-f,--follow", o->follow, "Keep printing what it writes until it ends");
    sub->add_option("--stage", o->stage, "A pipeline's stage N (from 0): its stderr only")
        ->check(whole_number(0, 64))
        ->type_name("N");
    sub->add_option("-n,--tail", o->tail, "Start with the last N lines (of each stream)")
        ->check(whole_number(0, INT64_MAX))
        ->type_name("N");
    sub->callback([&ctx, o] {
        ctx.action = [&ctx, o] {
            return logs(ctx, *o);
        };
    });
}

}  // namespace mpctl::cli
