// The task family: task.submit, task.submit_batch, task.get, task.list, task.wait, task.as_completed,
// task.cancel, task.signal, task.logs. Contracts in proto/PROTOCOL.md.

#include <algorithm>
#include <set>

#include <asio/steady_timer.hpp>

#include <mpctl/common/signals.hpp>
#include <mpctl/common/time.hpp>
#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/daemon.hpp>
#include <mpctl/daemon/server/session.hpp>

namespace mpctl::daemon {

using nlohmann::json;
using proto::ErrorCode;
using proto::RequestError;

namespace {

constexpr size_t k_max_batch = 100000;
constexpr size_t k_max_ids = 100000;

// A task the client may know about: its row is committed.
Task& known_task(Daemon& d, int64_t id) {
    Task* t = d.scheduler().find(id);
    if (t == nullptr || !t->durable) {
        throw RequestError(ErrorCode::unknown_id, "no task " + std::to_string(id), {{"id", id}});
    }
    return *t;
}

// One task's status as JSON text (written by hand: every submit and task.get answers with one).
std::string status_text(Daemon& d, const Task& t) {
    return proto::to_json_text(d.scheduler().status(t));
}

// [status, ...] as text, appended to OUT: lists of many tasks are the largest answers the daemon writes.
void append_statuses(Daemon& d, const std::vector<const Task*>& tasks, std::string& out) {
    out.push_back('[');
    for (size_t i = 0; i < tasks.size(); ++i) {
        if (i > 0) {
            out.push_back(',');
        }
        out += status_text(d, *tasks[i]);
    }
    out.push_back(']');
}

void append_ids(const std::vector<int64_t>& ids, std::string& out) {
    out.push_back('[');
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) {
            out.push_back(',');
        }
        out += std::to_string(ids[i]);
    }
    out.push_back(']');
}

// {"tasks":[status, ...]}
std::string tasks_text(Daemon& d, const std::vector<const Task*>& tasks) {
    std::string out = R"({"tasks":)";
    append_statuses(d, tasks, out);
    out.push_back('}');
    return out;
}

// One task.completed notification, written as text: a map streams one per task.
void notify_completed(Daemon& d, Responder& responder, const Task& t) {
    std::string line = R"({"jsonrpc":"2.0","method":"task.completed","params":{"task":)";
    line += status_text(d, t);
    line += "}}\n";
    responder.notify_line(std::move(line));
}

// ids (array) or id (one), deduplicated in first-seen order, all known.
std::vector<int64_t> read_ids(Daemon& d, const proto::Params& p) {
    std::vector<int64_t> ids;
    if (p.has("ids")) {
        ids = p.required<std::vector<int64_t>>("ids");
    } else if (p.has("id")) {
        ids.push_back(p.required<int64_t>("id"));
    }
    if (ids.empty()) {
        proto::throw_invalid_params("params.ids: give at least one task id");
    }
    if (ids.size() > k_max_ids) {
        proto::throw_invalid_params("params.ids: at most " + std::to_string(k_max_ids) + " ids");
    }
    std::vector<int64_t> unique;
    std::set<int64_t> seen;
    std::vector<int64_t> unknown;
    for (int64_t id : ids) {
        if (!seen.insert(id).second) {
            continue;
        }
        Task* t = d.scheduler().find(id);
        if (t == nullptr || !t->durable) {
            unknown.push_back(id);
        }
        unique.push_back(id);
    }
    if (!unknown.empty()) {
        std::string list;
        for (int64_t id : unknown) {
            list += (list.empty() ? "" : ", ") + std::to_string(id);
        }
        throw RequestError(ErrorCode::unknown_id, "no task " + list, {{"ids", unknown}});
    }
    return unique;
}

std::optional<std::chrono::milliseconds> read_timeout(const proto::Params& p) {
    auto t = p.optional<double>("timeout");
    if (!t) {
        return std::nullopt;
    }
    if (*t < 0 || *t > 365.0 * 86400) {
        proto::throw_invalid_params("params.timeout: must be between 0 and one year (in seconds)");
    }
    return std::chrono::milliseconds(static_cast<int64_t>(*t * 1000));
}

proto::TaskSpec validated_spec(Daemon& d, const json& value, const std::string& path) {
    proto::TaskSpec spec = proto::parse_task_spec(value, path);
    if (spec.cgroup && d.cgroups().unavailable()) {
        proto::throw_invalid_params(
            path + ".cgroup: containment is not available here: " + *d.cgroups().unavailable());
    }
    for (int64_t dep : spec.after) {
        Task* t = d.scheduler().find(dep);
        if (t == nullptr || !t->durable) {
            throw RequestError(ErrorCode::unknown_id, path + ".after: no task " + std::to_string(dep),
                               {{"id", dep}});
        }
    }
    return spec;
}

void refuse_when_stopping(Daemon& d) {
    if (d.stopping()) {
        throw RequestError(ErrorCode::shutting_down, "the daemon is shutting down and takes no new tasks");
    }
}

// The descriptors passed on this connection for the specs that read stdin from one ("stdin_fd"), in
// order; all are claimed or none.
std::vector<std::shared_ptr<common::UniqueFd>> claim_passed_stdin(
    const std::vector<proto::TaskSpec>& specs, const std::shared_ptr<Responder>& responder) {
    std::vector<std::shared_ptr<common::UniqueFd>> fds(specs.size());
    size_t wanted = 0;
    for (const auto& spec : specs) {
        wanted += spec.stdin_passed ? 1 : 0;
    }
    if (wanted == 0) {
        return fds;
    }
    auto session = responder->session();
    std::vector<common::UniqueFd> taken;
    for (size_t i = 0; session && i < wanted; ++i) {
        common::UniqueFd fd = session->take_passed_fd();
        if (!fd) {
            break;
        }
        taken.push_back(std::move(fd));
    }
    if (taken.size() < wanted) {
        proto::throw_invalid_params("stdin_fd: " + std::to_string(wanted) + " descriptor(s) needed but " +
                                    std::to_string(taken.size()) +
                                    " passed with SCM_RIGHTS on this connection");
    }
    size_t next = 0;
    for (size_t i = 0; i < specs.size(); ++i) {
        if (specs[i].stdin_passed) {
            fds[i] = std::make_shared<common::UniqueFd>(std::move(taken[next++]));
        }
    }
    return fds;
}

// Adds the tasks, journals them in one transaction, and calls DONE once it is committed.
void submit_tasks(Daemon& d, std::vector<proto::TaskSpec> specs,
                  std::function<void(std::vector<int64_t>)> done,
                  const std::shared_ptr<Responder>& responder) {
    auto passed_stdin = claim_passed_stdin(specs, responder);
    int64_t now = common::now_unix_ms();
    std::vector<int64_t> ids;
    std::vector<const Task*> tasks;
    std::vector<Environments::Entry> new_environments;
    ids.reserve(specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
        proto::TaskSpec& spec = specs[i];
        int64_t env_id = 0;
        if (spec.env) {
            bool is_new = false;
            auto entry = d.environments().intern(spec.env, is_new);
            spec.env = entry.env;
            env_id = entry.id;
            if (is_new) {
                new_environments.push_back(entry);
            }
        }
        Task& t = d.scheduler().add(std::move(spec), now);
        t.env_id = env_id;
        t.passed_stdin = std::move(passed_stdin[i]);
        ids.push_back(t.id);
        tasks.push_back(&t);
    }
    d.store().insert_tasks(
        tasks, new_environments, [&d, ids, done = std::move(done), responder](common::Result<void> r) {
            if (!r) {
                for (int64_t id : ids) {
                    d.scheduler().discard(id);
                }
                responder->error(ErrorCode::io_error, "could not record the task: " + r.error().message());
                return;
            }
            // Answer first, then start them: the client is not kept waiting for our spawns.
            for (int64_t id : ids) {
                d.scheduler().make_durable(id);
            }
            guarded(responder, [&] { done(ids); });
            for (int64_t id : ids) {
                d.scheduler().schedule(id);
            }
        });
}

void task_submit(Daemon& d, Call& call) {
    refuse_when_stopping(d);
    proto::TaskSpec spec = validated_spec(d, call.params.raw(), "params");
    std::vector<proto::TaskSpec> specs;
    specs.push_back(std::move(spec));
    submit_tasks(
        d, std::move(specs),
        [&d, responder = call.responder](const std::vector<int64_t>& ids) {
            responder->result_text(status_text(d, known_task(d, ids.front())));
        },
        call.responder);
}

void task_submit_batch(Daemon& d, Call& call) {
    refuse_when_stopping(d);
    call.params.reject_unknown({"defaults", "tasks"});
    json defaults = call.params.get_or<json>("defaults", json::object());
    if (!defaults.is_object()) {
        proto::throw_invalid_params("params.defaults: expected an object");
    }
    json entries = call.params.required<json>("tasks");
    if (!entries.is_array() || entries.empty() || entries.size() > k_max_batch) {
        proto::throw_invalid_params("params.tasks: expected an array of 1 to " + std::to_string(k_max_batch) +
                                    " task specs");
    }
    // The default environment (most of a batch's bytes, the same for every entry) is parsed once and
    // shared, not copied into each entry and parsed again.
    std::shared_ptr<const proto::Environment> default_env;
    if (auto env = defaults.find("env"); env != defaults.end()) {
        default_env = proto::parse_task_spec({{"argv", {"-"}}, {"env", *env}}, "params.defaults").env;
        defaults.erase(env);
    }
    std::vector<proto::TaskSpec> specs;
    specs.reserve(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
        std::string path = "params.tasks[" + std::to_string(i) + "]";
        if (!entries[i].is_object()) {
            proto::throw_invalid_params(path + ": expected an object");
        }
        specs.push_back(validated_spec(d, proto::merge_spec_defaults(defaults, entries[i]), path));
        if (default_env && !entries[i].contains("env")) {
            specs.back().env = default_env;
        }
    }
    submit_tasks(
        d, std::move(specs),
        [responder = call.responder](const std::vector<int64_t>& ids) {
            responder->result({{"ids", ids}});
        },
        call.responder);
}

void task_get(Daemon& d, Call& call) {
    call.params.reject_unknown({"id", "ids"});
    if (call.params.has("ids")) {
        std::vector<const Task*> tasks;
        for (int64_t id : read_ids(d, call.params)) {
            tasks.push_back(&known_task(d, id));
        }
        call.responder->result_text(tasks_text(d, tasks));
        return;
    }
    call.responder->result_text(status_text(d, known_task(d, call.params.required<int64_t>("id"))));
}

void task_list(Daemon& d, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"state", "label", "labels", "pool", "name", "limit"});
    std::set<TaskState> states;
    if (p.has("state")) {
        json s = p.required<json>("state");
        std::vector<std::string> names =
            s.is_array() ? proto::Params::convert<std::vector<std::string>>(s, "params.state")
                         : std::vector<std::string>{proto::Params::convert<std::string>(s, "params.state")};
        for (const auto& n : names) {
            auto st = proto::parse_task_state(n);
            if (!st) {
                proto::throw_invalid_params("params.state: unknown state \"" + n +
                                            "\" (pending, running, succeeded, failed, cancelled)");
            }
            states.insert(*st);
        }
    }
    std::map<std::string, std::optional<std::string>> labels;  // key -> value, or any value
    auto add_label = [&](const std::string& text) {
        auto eq = text.find('=');
        if (eq == std::string::npos) {
            labels[text] = std::nullopt;
        } else {
            labels[text.substr(0, eq)] = text.substr(eq + 1);
        }
    };
    if (p.has("label")) {
        add_label(p.required<std::string>("label"));
    }
    if (p.has("labels")) {
        for (const auto& l : p.required<std::vector<std::string>>("labels")) {
            add_label(l);
        }
    }
    auto pool = p.optional<std::string>("pool");
    auto name = p.optional<std::string>("name");
    int64_t limit = p.get_or<int64_t>("limit", 0);
    if (limit < 0) {
        proto::throw_invalid_params("params.limit: must not be negative");
    }

    std::vector<const Task*> matches;
    for (const auto& [id, t] : d.scheduler().tasks()) {
        if (!t.durable || (!states.empty() && !states.contains(t.state)) || (pool && t.spec.pool != *pool) ||
            (name && t.spec.name != *name)) {
            continue;
        }
        bool ok = true;
        for (const auto& [k, v] : labels) {
            auto it = t.spec.labels.find(k);
            if (it == t.spec.labels.end() || (v && it->second != *v)) {
                ok = false;
                break;
            }
        }
        if (ok) {
            matches.push_back(&t);
        }
    }
    // --limit N keeps the N most recent, still listed oldest first.
    size_t skip = limit > 0 && matches.size() > static_cast<size_t>(limit)
                      ? matches.size() - static_cast<size_t>(limit)
                      : 0;
    std::vector<const Task*> listed(matches.begin() + static_cast<std::ptrdiff_t>(skip), matches.end());
    call.responder->result_text(tasks_text(d, listed));
}

// State of one task.wait or task.as_completed in flight.
struct Waiter {
    std::vector<int64_t> ids;
    size_t unfinished = 0;  // of ids: counted down as they finish, so each finish costs O(1)
    bool any = false;
    bool stream = false;  // as_completed: one task.completed notification per finished task
    std::shared_ptr<Responder> responder;
    FutureTable::WatchId watch = 0;
    std::unique_ptr<asio::steady_timer> timer;
    bool done = false;
};

void finish_wait(Daemon& d, const std::shared_ptr<Waiter>& w, bool timed_out) {
    if (w->done) {
        return;
    }
    w->done = true;
    d.futures().unwatch(w->watch);
    if (w->timer) {
        w->timer->cancel();
    }
    // Written as text: a wait on a whole batch answers with thousands of statuses.
    std::vector<int64_t> done;
    std::vector<int64_t> pending;
    std::vector<const Task*> tasks;
    for (int64_t id : w->ids) {
        Task* t = d.scheduler().find(id);
        if (t == nullptr) {
            continue;
        }
        (t->finished() ? done : pending).push_back(id);
        if (!w->stream) {
            tasks.push_back(t);
        }
    }
    std::string result = R"({"done":)";
    append_ids(done, result);
    result += R"(,"pending":)";
    append_ids(pending, result);
    if (!w->stream) {
        result += R"(,"tasks":)";
        append_statuses(d, tasks, result);
    }
    result += timed_out ? R"(,"timed_out":true})" : R"(,"timed_out":false})";
    w->responder->result_text(result);
}

void start_wait(Daemon& d, Call& call, bool stream) {
    const auto& p = call.params;
    p.reject_unknown(stream ? std::initializer_list<const char*>{"ids", "id", "timeout"}
                            : std::initializer_list<const char*>{"ids", "id", "timeout", "any"});
    auto w = std::make_shared<Waiter>();
    w->ids = read_ids(d, p);
    w->any = !stream && p.get_or<bool>("any", false);
    w->stream = stream;
    w->responder = call.responder;
    auto timeout = read_timeout(p);

    std::vector<const Task*> finished;
    std::vector<int64_t> unfinished;
    for (int64_t id : w->ids) {
        const Task& t = known_task(d, id);
        if (t.finished()) {
            finished.push_back(&t);
        } else {
            unfinished.push_back(id);
        }
    }
    if (stream) {
        // Those already done come first, in the order they finished.
        std::stable_sort(finished.begin(), finished.end(), [](const Task* a, const Task* b) {
            return a->finished_at_ms.value_or(0) < b->finished_at_ms.value_or(0);
        });
        for (const Task* t : finished) {
            notify_completed(d, *w->responder, *t);
        }
    }
    w->unfinished = unfinished.size();
    if (unfinished.empty() || (w->any && !finished.empty()) || (timeout && timeout->count() == 0)) {
        finish_wait(d, w, !unfinished.empty() && !(w->any && !finished.empty()));
        return;
    }
    w->watch = d.futures().watch(unfinished, [&d, w](int64_t id) {
        if (w->stream) {
            if (Task* t = d.scheduler().find(id)) {
                notify_completed(d, *w->responder, *t);
            }
        }
        if (--w->unfinished == 0 || w->any) {
            finish_wait(d, w, false);
        }
    });
    if (timeout) {
        w->timer = std::make_unique<asio::steady_timer>(d.io(), *timeout);
        w->timer->async_wait([&d, w](const std::error_code& ec) {
            if (!ec) {
                finish_wait(d, w, true);
            }
        });
    }
    w->responder->on_disconnect([&d, w] {
        w->done = true;
        d.futures().unwatch(w->watch);
        if (w->timer) {
            w->timer->cancel();
        }
    });
}

void task_cancel(Daemon& d, Call& call) {
    call.params.reject_unknown({"ids", "id", "force"});
    auto ids = read_ids(d, call.params);
    bool force = call.params.get_or<bool>("force", false);
    json results = json::array();
    for (int64_t id : ids) {
        const char* outcome = "";
        switch (d.scheduler().cancel(id, force)) {
            case Scheduler::CancelResult::cancelled:
                outcome = "cancelled";
                break;
            case Scheduler::CancelResult::terminating:
                outcome = "terminating";
                break;
            case Scheduler::CancelResult::running:
                outcome = "running";
                break;
            case Scheduler::CancelResult::already_finished:
                outcome = "finished";
                break;
        }
        results.push_back(
            {{"id", id}, {"outcome", outcome}, {"state", proto::to_string(known_task(d, id).state)}});
    }
    call.responder->result({{"results", std::move(results)}});
}

void task_signal(Daemon& d, Call& call) {
    call.params.reject_unknown({"id", "signal"});
    int64_t id = call.params.required<int64_t>("id");
    Task& t = known_task(d, id);
    json sig = call.params.get_or<json>("signal", json("TERM"));
    std::optional<int> signo;
    if (sig.is_number_integer()) {
        signo = proto::Params::convert<int>(sig, "params.signal");
        if (*signo < 0 || *signo > 64) {
            signo.reset();
        }
    } else if (sig.is_string()) {
        signo = common::parse_signal(sig.get<std::string>());
    }
    if (!signo) {
        proto::throw_invalid_params("params.signal: expected a signal name (TERM, SIGKILL, ...) or number");
    }
    if (!d.scheduler().signal(id, *signo)) {
        throw RequestError(
            ErrorCode::invalid_state,
            "task " + std::to_string(id) + " is " + std::string(proto::to_string(t.state)) + ", not running",
            {{"state", proto::to_string(t.state)}});
    }
    call.responder->result({{"id", id}, {"signal", *signo}, {"signal_name", common::signal_name(*signo)}});
}

void task_logs(Daemon& d, Call& call) {
    call.params.reject_unknown({"id", "stream", "follow", "stage", "tail"});
    int64_t id = call.params.required<int64_t>("id");
    Task& task = known_task(d, id);
    std::string stream = call.params.get_or<std::string>("stream", "stdout");
    LogStreamer::Request req;
    req.task_id = id;
    req.follow = call.params.get_or<bool>("follow", false);
    if (stream == "stdout") {
        req.want_stdout = true;
        req.want_stderr = false;
    } else if (stream == "stderr") {
        req.want_stdout = false;
        req.want_stderr = true;
    } else if (stream == "both") {
        req.want_stdout = true;
        req.want_stderr = true;
    } else {
        proto::throw_invalid_params("params.stream: expected \"stdout\", \"stderr\" or \"both\"");
    }
    if (auto stage = call.params.optional<int64_t>("stage")) {
        size_t stages = std::max<size_t>(1, task.spec.pipeline.size());
        if (*stage < 0 || static_cast<size_t>(*stage) >= stages) {
            proto::throw_invalid_params("params.stage: task " + std::to_string(id) + " has " +
                                        std::to_string(stages) + (stages == 1 ? " stage" : " stages") +
                                        " (0 to " + std::to_string(stages - 1) + ")");
        }
        if (req.want_stdout) {
            proto::throw_invalid_params(
                "params.stage: only stderr is kept per stage (stdout is the last stage's)");
        }
        if (!task.spec.pipeline.empty()) {
            req.stage = static_cast<size_t>(*stage);
        }
    }
    if (auto tail = call.params.optional<int64_t>("tail")) {
        if (*tail < 0) {
            proto::throw_invalid_params("params.tail: must not be negative");
        }
        req.tail_lines = static_cast<uint64_t>(*tail);
    }
    d.logs().start(call.responder, req);
}

}  // namespace

void register_task_commands(Registry& r, Daemon& d) {
    r.add("task.submit", [&d](Call& c) { task_submit(d, c); });
    r.add("task.submit_batch", [&d](Call& c) { task_submit_batch(d, c); });
    r.add("task.get", [&d](Call& c) { task_get(d, c); });
    r.add("task.list", [&d](Call& c) { task_list(d, c); });
    r.add("task.wait", [&d](Call& c) { start_wait(d, c, false); });
    r.add("task.as_completed", [&d](Call& c) { start_wait(d, c, true); });
    r.add("task.cancel", [&d](Call& c) { task_cancel(d, c); });
    r.add("task.signal", [&d](Call& c) { task_signal(d, c); });
    r.add("task.logs", [&d](Call& c) { task_logs(d, c); });
}

}  // namespace mpctl::daemon
