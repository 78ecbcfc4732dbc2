// task.get and task.list: statuses, answered as text.

#include <algorithm>
#include <map>
#include <set>

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/task_context.hpp>
#include <mpctl/daemon/commands/task_filter.hpp>
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

void task_list(const TaskContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"state", "label", "labels", "pool", "name", "limit", "hide_finished_maps"});
    TaskFilter filter = read_task_filter(p);
    // The finished tasks of a map whose tasks have all finished (label "map"): one pass finds the maps
    // that still have work.
    std::set<std::string> live_maps;
    bool hide_maps = p.get_or<bool>("hide_finished_maps", false);
    if (hide_maps) {
        for (const auto& [id, t] : ctx.scheduler.tasks()) {
            if (!t.finished()) {
                if (auto m = t.spec.labels().find("map"); m != t.spec.labels().end()) {
                    live_maps.insert(m->second);
                }
            }
        }
    }
    auto hidden = [&](const Task& t) {
        if (!hide_maps || !t.finished()) {
            return false;
        }
        auto m = t.spec.labels().find("map");
        return m != t.spec.labels().end() && !live_maps.contains(m->second);
    };
    int64_t limit = p.get_or<int64_t>("limit", 0);
    if (limit < 0) {
        proto::throw_invalid_params("params.limit: must not be negative");
    }
    // --limit N keeps the N most recent matches, listed oldest first: the walk starts at the newest and
    // stops at the Nth match, so a short list of a long table costs what it lists (unless the filter
    // matches few of the tasks it passes). Running tasks have an index of their own.
    std::vector<const Task*> listed;
    auto take = [&](const Task& t) {
        if (filter.matches(t) && !hidden(t)) {
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
