// mpctl wait / as-completed / result: block on futures.
//
// Exit codes mirror the tasks (README.md, "Exit codes"): 0 if all succeeded, else the code of the first
// unsuccessful task in argument order; 124 if the --timeout expired first.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iterator>
#include <optional>
#include <unistd.h>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/log_positions.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/cli/reconnect.hpp>
#include <mpctl/cli/task_exit.hpp>
#include <mpctl/common/base64.hpp>
#include <mpctl/proto/task_status.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

struct WaitOptions {
    std::vector<std::string> ids;
    std::string timeout;
    bool any = false;
};

// The --timeout of a wait that may be asked again after a reconnect: each time, what is left of it.
class WaitTimeout {
  public:
    explicit WaitTimeout(const std::string& timeout) {
        if (!timeout.empty()) {
            deadline_ = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(parse_seconds(timeout, "--timeout")));
        }
    }
    [[nodiscard]] json params(const std::vector<int64_t>& ids) const {
        json params = {{"ids", ids}};
        if (deadline_) {
            params["timeout"] = std::max(
                0.0, std::chrono::duration<double>(*deadline_ - std::chrono::steady_clock::now()).count());
        }
        return params;
    }

  private:
    std::optional<std::chrono::steady_clock::time_point> deadline_;
};

// The code of the first task in IDS order that did not succeed (among those finished), else 0.
int first_unsuccessful(const std::vector<int64_t>& ids, const std::map<int64_t, proto::TaskStatus>& by_id) {
    FirstUnsuccessful first;
    for (size_t i = 0; i < ids.size(); ++i) {
        auto it = by_id.find(ids[i]);
        if (it != by_id.end() && proto::is_finished(it->second.state)) {
            first.add(i, it->second);
        }
    }
    return first.code();
}

int wait(AppContext& ctx, const WaitOptions& o) {
    auto ids = parse_ids(o.ids);
    WaitTimeout timeout(o.timeout);
    Client client = Client::connect(ctx.global);
    Reconnector reconnector(ctx.global);
    // The whole answer comes at once: after a reconnect the same wait is asked again.
    json result = retrying(client, reconnector, [&] {
        json params = timeout.params(ids);
        params["any"] = o.any;
        return client.call("task.wait", params);
    });
    if (ctx.global.json) {
        print_json(result);
    }
    std::map<int64_t, proto::TaskStatus> by_id;
    for (const auto& t : result.at("tasks")) {
        auto s = proto::status_from_json(t);
        by_id.emplace(s.id, std::move(s));
    }
    // On a terminal, the ones that did not succeed, one line each, so that the exit code is not all one
    // learns of several failures.
    if (!ctx.global.json && ids.size() > 1 && ::isatty(2) == 1) {
        std::string said;
        for (int64_t id : ids) {
            auto it = by_id.find(id);
            if (it != by_id.end() && proto::is_finished(it->second.state) &&
                it->second.state != proto::TaskState::succeeded) {
                said += "mpctl: task " + std::to_string(id) + " " + describe_outcome(it->second) + "\n";
            }
        }
        write_out(2, said);
    }
    bool timed_out = result.value("timed_out", false);
    if (timed_out) {
        if (!ctx.global.json) {
            std::fprintf(stderr, "mpctl: timed out with %zu of %zu tasks unfinished\n",
                         result.at("pending").size(), ids.size());
        }
        return exit_code::timeout;
    }
    if (o.any) {
        // The first finished task in argument order speaks for the wait.
        for (int64_t id : ids) {
            auto it = by_id.find(id);
            if (it != by_id.end() && proto::is_finished(it->second.state)) {
                return proto::mirror_exit_code(it->second);
            }
        }
    }
    return first_unsuccessful(ids, by_id);
}

int as_completed(AppContext& ctx, const WaitOptions& o) {
    auto ids = parse_ids(o.ids);
    WaitTimeout timeout(o.timeout);
    Client client = Client::connect(ctx.global);
    Reconnector reconnector(ctx.global);
    std::map<int64_t, proto::TaskStatus> by_id;
    auto on_completed = [&](const std::string& method, const json& params) {
        if (method != "task.completed") {
            return;
        }
        const json& task = params.at("task");
        auto s = proto::status_from_json(task);
        if (by_id.contains(s.id)) {
            return;
        }
        if (ctx.global.json) {
            print_json(task);
        } else {
            write_out(1, std::to_string(s.id) + "\n");
        }
        by_id.emplace(s.id, std::move(s));
    };
    // After a reconnect, only the tasks not printed yet are asked for.
    json result = retrying(client, reconnector, [&] {
        std::vector<int64_t> left;
        std::copy_if(ids.begin(), ids.end(), std::back_inserter(left),
                     [&](int64_t id) { return !by_id.contains(id); });
        if (left.empty()) {
            return json{{"timed_out", false}};
        }
        return client.call("task.as_completed", timeout.params(left), on_completed);
    });
    if (result.value("timed_out", false)) {
        if (!ctx.global.json) {
            std::fprintf(stderr, "mpctl: timed out with %zu of %zu tasks unfinished\n",
                         ids.size() - by_id.size(), ids.size());
        }
        return exit_code::timeout;
    }
    return first_unsuccessful(ids, by_id);
}

int result(AppContext& ctx, const std::string& id_arg, const std::string& timeout) {
    int64_t id = parse_id(id_arg);
    WaitTimeout wait_timeout(timeout);
    Client client = Client::connect(ctx.global);
    Reconnector reconnector(ctx.global);
    json waited =
        retrying(client, reconnector, [&] { return client.call("task.wait", wait_timeout.params({id})); });
    if (waited.value("timed_out", false)) {
        throw CliError(exit_code::timeout, "timed out waiting for task " + std::to_string(id));
    }
    std::string out;
    // The result is the last attempt's output (a retried task's earlier attempts failed).
    // Offsets asked for ("from"): a stream cut by a lost connection goes on where it was.
    json logs_params = {{"id", id}, {"stream", "stdout"}, {"from", json::array()}};
    if (int attempts = waited.at("tasks").at(0).value("attempts", 0); attempts > 1) {
        logs_params["attempt"] = attempts;
    }
    LogPositions positions;
    auto on_output = [&](const std::string& method, const json& params) {
        if (method != "task.output") {
            return;
        }
        if (auto data = common::base64_decode(params.value("data", std::string()))) {
            positions.saw(params, data->size());
            if (ctx.global.json) {
                out += *data;
            } else {
                write_out(1, *data);
            }
        }
    };
    json logs = retrying(client, reconnector, [&] {
        logs_params["from"] = positions.from();
        return client.call("task.logs", logs_params, on_output);
    });
    auto status = proto::status_from_json(logs.at("task"));
    if (ctx.global.json) {
        json j = logs.at("task");
        j["stdout"] = out;
        print_json(j);
    } else if (status.state != proto::TaskState::succeeded) {
        std::fprintf(stderr, "mpctl: task %lld %s%s%s\n", static_cast<long long>(id),
                     describe_outcome(status).c_str(), status.error ? ": " : "",
                     status.error.value_or("").c_str());
    }
    return proto::mirror_exit_code(status);
}

}  // namespace

void add_task_wait_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    if (wanted(only, "wait")) {
        auto* sub = app.add_subcommand("wait", "Wait until tasks are done (all, or --any)");
        auto o = std::make_shared<WaitOptions>();
        sub->add_option("ids", o->ids, "Task ids")->required();
        sub->add_option("--timeout", o->timeout, "Give up after this long (exit 124)");
        sub->add_flag("--any", o->any, "Return when the first one is done");
        sub->callback([&ctx, o] {
            ctx.action = [&ctx, o] {
                return wait(ctx, *o);
            };
        });
    }
    if (wanted(only, "as-completed")) {
        auto* sub =
            app.add_subcommand("as-completed", "Print each task id as it finishes, in completion order");
        auto o = std::make_shared<WaitOptions>();
        sub->add_option("ids", o->ids, "Task ids")->required();
        sub->add_option("--timeout", o->timeout, "Give up after this long (exit 124)");
        sub->callback([&ctx, o] {
            ctx.action = [&ctx, o] {
                return as_completed(ctx, *o);
            };
        });
    }
    if (wanted(only, "result")) {
        auto* sub = app.add_subcommand("result", "Wait for a task, print its stdout, exit with its code");
        auto id = std::make_shared<std::string>();
        auto timeout = std::make_shared<std::string>();
        sub->add_option("id", *id, "Task id")->required();
        sub->add_option("--timeout", *timeout, "Give up after this long (exit 124)");
        sub->callback([&ctx, id, timeout] {
            ctx.action = [&ctx, id, timeout] {
                return result(ctx, *id, *timeout);
            };
        });
    }
}

}  // namespace mpctl::cli
