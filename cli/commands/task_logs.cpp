// mpctl logs: print a task's captured output; --follow streams it until the task ends.

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <poll.h>
#include <set>
#include <unistd.h>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/log_positions.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/cli/reconnect.hpp>
#include <mpctl/common/base64.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

struct LogsOptions {
    std::vector<std::string> ids;
    std::vector<std::string> labels;
    bool stderr_only = false;
    bool both = false;
    bool follow = false;
    std::optional<int> stage;
    std::optional<int64_t> tail;
    std::optional<int> attempt;
};

// The header before a stretch of output: the task when several are shown, the attempt when the task made
// several and a person reads it (a script reading a pipe gets the bytes alone, as `cat` of the files would).
class Headers {
  public:
    Headers(bool tasks, bool attempts) : tasks_(tasks), attempts_(attempts) {}
    // Tasks whose attempt 1 is headed too (they have made several attempts already).
    void several_attempts(int64_t id) { several_.push_back(id); }

    // The header to write before output of attempt ATTEMPT of task ID, or "" when none is due.
    std::string before(int64_t id, int attempt) {
        if (id == id_ && attempt == attempt_) {
            return "";
        }
        bool first = id_ == 0;
        bool new_task = id != id_;
        id_ = id;
        attempt_ = attempt;
        bool head_attempt =
            attempts_ && (attempt > 1 || std::find(several_.begin(), several_.end(), id) != several_.end());
        std::string words;
        if (tasks_ && (new_task || head_attempt)) {
            words = "task " + std::to_string(id);
        }
        if (head_attempt) {
            words += (words.empty() ? "" : ", ") + std::string("attempt ") + std::to_string(attempt);
        }
        if (words.empty()) {
            return "";
        }
        return std::string(first ? "" : "\n") + "==> " + words + " <==\n";
    }

  private:
    bool tasks_;
    bool attempts_;
    std::vector<int64_t> several_;
    int64_t id_ = 0;
    int attempt_ = 0;
};

// The tasks to show: the ids given, and those with the labels (oldest first).
std::vector<int64_t> chosen_tasks(Client& client, const LogsOptions& o) {
    std::vector<int64_t> ids = parse_ids(o.ids);
    if (!o.labels.empty()) {
        json listed = client.call("task.list", {{"labels", o.labels}});
        for (const auto& t : listed.at("tasks")) {
            int64_t id = t.at("id").get<int64_t>();
            if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
                ids.push_back(id);
            }
        }
    }
    return ids;
}

void stream_logs(AppContext& ctx, const LogsOptions& o, Client& client, Headers& headers,
                 std::map<int64_t, LogPositions>& positions, std::set<int64_t>& answered,
                 std::map<int64_t, int64_t>& task_of_request, std::optional<CliError>& first_error);

int logs(AppContext& ctx, const LogsOptions& o) {
    if (o.ids.empty() && o.labels.empty()) {
        throw CliError(exit_code::usage, "missing task id (mpctl logs ID, or --label K=V)");
    }
    if (o.stage && o.both) {
        throw CliError(exit_code::usage, "--stage: a stage has only its stderr (stdout is the last stage's)");
    }
    Client client = Client::connect(ctx.global);
    std::vector<int64_t> ids = chosen_tasks(client, o);
    const char* stream = o.both ? "both" : (o.stderr_only || o.stage ? "stderr" : "stdout");
    // Several tasks: one request each, all at once (with --follow they stream side by side), and a header
    // before each task's output whenever it changes, as tail has it for several files. On a terminal, a
    // retried task's attempts are headed too.
    Headers headers(ids.size() > 1 && !ctx.global.json, !ctx.global.json && !o.attempt && ::isatty(1) == 1);
    if (!ctx.global.json && !o.attempt && ::isatty(1) == 1) {
        json got = client.call("task.get", {{"ids", ids}});
        for (const auto& t : got.at("tasks")) {
            if (t.value("attempts", 0) > 1) {
                headers.several_attempts(t.at("id").get<int64_t>());
            }
        }
    }
    // Offsets asked for ("from"): after a lost connection, each task's streams go on where they were.
    std::map<int64_t, LogPositions> positions;
    auto params_for = [&](int64_t id) {
        json params = {{"id", id}, {"stream", stream}, {"follow", o.follow}, {"from", positions[id].from()}};
        if (o.stage) {
            params["stage"] = *o.stage;
        }
        if (o.tail) {
            params["tail"] = *o.tail;  // ignored on a resumed stream: the daemon took it the first time
        }
        if (o.attempt) {
            params["attempt"] = *o.attempt;
        }
        return params;
    };
    std::set<int64_t> answered;
    std::map<int64_t, int64_t> task_of_request;
    std::optional<CliError> first_error;
    Reconnector reconnector(ctx.global);
    retrying(client, reconnector, [&] {
        task_of_request.clear();
        for (int64_t id : ids) {
            if (!answered.contains(id)) {
                task_of_request[client.send("task.logs", params_for(id))] = id;
            }
        }
        stream_logs(ctx, o, client, headers, positions, answered, task_of_request, first_error);
    });
    if (first_error) {
        throw *first_error;
    }
    return exit_code::ok;
}

// Prints the streams of TASK_OF_REQUEST (request id -> task) until each is answered.
void stream_logs(AppContext& ctx, const LogsOptions& o, Client& client, Headers& headers,
                 std::map<int64_t, LogPositions>& positions, std::set<int64_t>& answered,
                 std::map<int64_t, int64_t>& task_of_request, std::optional<CliError>& first_error) {
    while (!task_of_request.empty()) {
        while (auto msg = client.next_message()) {
            if (msg->value("method", std::string()) == "task.output") {
                json& params = msg->at("params");
                auto data = common::base64_decode(params.value("data", std::string()));
                if (!data) {
                    continue;
                }
                positions[params.value("id", int64_t{0})].saw(params, data->size());
                if (ctx.global.json) {
                    params.erase("offset");  // mpctl's own bookkeeping
                    print_json(params);      // base64 data, one chunk per line
                    continue;
                }
                if (std::string header =
                        headers.before(params.value("id", int64_t{0}), params.value("attempt", 1));
                    !header.empty()) {
                    write_out(1, header);
                }
                // One stream asked for goes to stdout, to be piped; with --both each to its own.
                bool to_stderr = o.both && params.value("stream", std::string()) == "stderr";
                write_out(to_stderr ? 2 : 1, *data);
                continue;
            }
            auto rid = msg->find("id");
            if (rid == msg->end() || !rid->is_number_integer()) {
                continue;
            }
            auto it = task_of_request.find(rid->get<int64_t>());
            if (it == task_of_request.end()) {
                continue;
            }
            answered.insert(it->second);
            task_of_request.erase(it);
            if (auto err = msg->find("error"); err != msg->end() && !first_error) {
                first_error = error_from_daemon(*err);
            }
        }
        if (task_of_request.empty()) {
            break;
        }
        pollfd pfd{client.fd(), POLLIN, 0};
        if (!client.buffered() && ::poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            throw CliError(exit_code::failure, std::string("poll: ") + std::strerror(errno));
        }
        if (!client.read_available()) {
            throw ConnectionLost(exit_code::no_daemon, "the daemon closed the connection");
        }
    }
}

}  // namespace

void add_task_logs_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    // `follow` is `logs --follow`, as `tail -f` is to `tail`.
    for (bool follow_command : {false, true}) {
        const char* name = follow_command ? "follow" : "logs";
        if (!wanted(only, name)) {
            continue;
        }
        auto* sub = app.add_subcommand(
            name, follow_command ? "Print tasks' output as they write it, until they end (logs --follow)"
                                 : "Print tasks' captured stdout (or --stderr)");
        auto o = std::make_shared<LogsOptions>();
        o->follow = follow_command;
        sub->add_option("ids", o->ids, "Task ids (several: each headed, as tail has it)");
        sub->add_option("--label", o->labels, "And the tasks with label K=V (or key K)");
        sub->add_flag("--stderr", o->stderr_only, "Its stderr instead of its stdout");
        sub->add_flag("--both", o->both, "Both: stdout to stdout, stderr to stderr");
        if (!follow_command) {
            sub->add_flag("-f,--follow", o->follow, "Keep printing what it writes until it ends");
        }
        sub->add_option("--stage", o->stage, "A pipeline's stage N (from 0): its stderr only")
            ->check(whole_number(0, 64))
            ->type_name("N");
        sub->add_option("-n,--tail", o->tail,
                        "Start with the last N lines (of each stream, of the latest attempt)")
            ->check(whole_number(0, INT64_MAX))
            ->type_name("N");
        sub->add_option("--attempt", o->attempt, "Only attempt N of a retried task (default: every attempt)")
            ->check(whole_number(1, 1001))
            ->type_name("N");
        sub->callback([&ctx, o] {
            ctx.action = [&ctx, o] {
                return logs(ctx, *o);
            };
        });
    }
}

}  // namespace mpctl::cli
