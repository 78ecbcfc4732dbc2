// task.get and task.list: statuses, answered as text.

#include <algorithm>
#include <map>
#include <set>

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/task_context.hpp>
#include <mpctl/daemon/commands/task_text.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

// Answers with the statuses of IDS (a list when MANY, else the one task). A running task's status has its
// pid: one whose processes the spawn thread is still starting is answered for once they exist (well under a
// millisecond), so a client never sees a running task without one.
void answer_statuses(const TaskContext& ctx, const std::shared_ptr<Responder>& responder,
                     std::vector<int64_t> ids, bool many) {
    ctx.scheduler.after_starts(ids, [ctx, responder, ids, many] {
        guarded(responder, [&] {
            std::vector<const Task*> tasks;
            for (int64_t id : ids) {
                if (const Task* t = ctx.scheduler.find(id)) {
                    tasks.push_back(t);
                }
            }
            if (many) {
                responder->result_text(tasks_text(ctx.view, tasks));
            } else {
                responder->result_text(ctx.view.text(known_task(ctx, ids.front())));
            }
        });
    });
}

void task_get(const TaskContext& ctx, Call& call) {
    call.params.reject_unknown({"id", "ids"});
    bool many = call.params.has("ids");  // the answer's shape follows the question's
    std::vector<int64_t> ids = read_ids(call.params);
    if (many) {
        require_known(ctx, ids);  // data.ids; one id is named as data.id by known_task
    } else {
        (void)known_task(ctx, ids.front());
    }
    answer_statuses(ctx, call.responder, std::move(ids), many);
}

// The filters of task.list.
struct ListFilter {
    std::set<TaskState> states;
    std::map<std::string, std::optional<std::string>> labels;  // key -> value, or any value
    std::optional<std::string> pool;
    std::optional<std::string> name;

    [[nodiscard]] bool matches(const Task& t) const {
        if (!t.durable || (!states.empty() && !states.contains(t.state)) ||
            (pool && t.spec.pool() != *pool) || (name && t.spec.name() != *name)) {
            return false;
        }
        for (const auto& [k, v] : labels) {
            auto it = t.spec.labels().find(k);
            if (it == t.spec.labels().end() || (v && it->second != *v)) {
                return false;
            }
        }
        return true;
    }
};

ListFilter read_filter(const proto::Params& p) {
    ListFilter f;
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
            f.states.insert(*st);
        }
    }
    auto add_label = [&](const std::string& text) {
        auto eq = text.find('=');
        if (eq == std::string::npos) {
            f.labels[text] = std::nullopt;
        } else {
            f.labels[text.substr(0, eq)] = text.substr(eq + 1);
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
    f.pool = p.optional<std::string>("pool");
    f.name = p.optional<std::string>("name");
    return f;
}

void task_list(const TaskContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"state", "label", "labels", "pool", "name", "limit"});
    ListFilter filter = read_filter(p);
    int64_t limit = p.get_or<int64_t>("limit", 0);
    if (limit < 0) {
        proto::throw_invalid_params("params.limit: must not be negative");
    }
    // --limit N keeps the N most recent matches, listed oldest first: the walk starts at the newest and
    // stops at the Nth match, so a short list of a long table costs what it lists (unless the filter
    // matches few of the tasks it passes). Running tasks have an index of their own.
    std::vector<const Task*> listed;
    auto take = [&](const Task& t) {
        if (filter.matches(t)) {
            listed.push_back(&t);
        }
        return limit == 0 || listed.size() < static_cast<size_t>(limit);
    };
    if (filter.states == std::set<TaskState>{TaskState::running}) {
        const auto& running = ctx.scheduler.running_ids();
        for (auto it = running.rbegin(); it != running.rend(); ++it) {
            const Task* t = ctx.scheduler.find(*it);
            if (t != nullptr && !take(*t)) {
                break;
            }
        }
    } else {
        const auto& tasks = ctx.scheduler.tasks();
        for (auto it = tasks.rbegin(); it != tasks.rend() && take(it->second); ++it) {
        }
    }
    std::vector<int64_t> ids;
    ids.reserve(listed.size());
    for (auto it = listed.rbegin(); it != listed.rend(); ++it) {
        ids.push_back((*it)->id);
    }
    answer_statuses(ctx, call.responder, std::move(ids), true);
}

}  // namespace

void register_task_query_commands(Registry& r, const TaskContext& ctx) {
    r.add("task.get", [ctx](Call& c) { task_get(ctx, c); });
    r.add("task.list", [ctx](Call& c) { task_list(ctx, c); });
}

}  // namespace mpctl::daemon
