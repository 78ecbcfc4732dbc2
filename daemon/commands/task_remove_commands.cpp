// task.remove and task.clean: finished tasks go, journal rows and output files, as pueue's remove and clean
// and tsp -C. Ids are never given again (Store::delete_tasks keeps meta.next_task_id above them).

#include <mpctl/common/time.hpp>
#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/task_context.hpp>
#include <mpctl/daemon/commands/task_filter.hpp>
#include <mpctl/daemon/store/forget_tasks.hpp>

namespace mpctl::daemon {

using nlohmann::json;
using proto::ErrorCode;
using proto::RequestError;

namespace {

void remove_tasks(const TaskContext& ctx, const std::shared_ptr<Responder>& responder,
                  std::vector<int64_t> ids) {
    forget_tasks(ctx.store, ctx.scheduler, std::move(ids),
                 [responder](const common::Result<std::vector<int64_t>>& forgotten) {
                     guarded(responder, [&] {
                         if (!forgotten) {
                             responder->error(ErrorCode::io_error,
                                              "could not remove the tasks: " + forgotten.error().message());
                             return;
                         }
                         responder->result({{"removed", *forgotten}});
                     });
                 });
}

void task_remove(const TaskContext& ctx, Call& call) {
    call.params.reject_unknown({"id", "ids"});
    std::vector<int64_t> ids = read_ids(call.params);
    require_known(ctx, ids);
    json unfinished = json::array();
    for (int64_t id : ids) {
        if (!known_task(ctx, id).finished()) {
            unfinished.push_back(id);
        }
    }
    if (!unfinished.empty()) {
        throw RequestError(ErrorCode::invalid_state,
                           "task " + unfinished.front().dump() +
                               (unfinished.size() > 1 ? " and others" : "") +
                               " not finished: cancel first (mpctl cancel --force)",
                           {{"ids", unfinished}});
    }
    remove_tasks(ctx, call.responder, std::move(ids));
}

void task_clean(const TaskContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"state", "label", "labels", "pool", "name", "older_than"});
    TaskFilter filter = read_task_filter(p);
    for (TaskState s : filter.states) {
        if (!proto::is_finished(s)) {
            proto::throw_invalid_params(
                "params.state: only finished tasks are cleaned (succeeded, failed, "
                "cancelled)");
        }
    }
    double older_than = p.get_or<double>("older_than", 0);
    if (!(older_than >= 0 && older_than <= 3153600000.0)) {
        proto::throw_invalid_params("params.older_than: must be between 0 and 100 years (in seconds)");
    }
    int64_t before = common::now_unix_ms() - static_cast<int64_t>(older_than * 1000);
    std::vector<int64_t> ids;
    for (const auto& [id, t] : ctx.scheduler.tasks()) {
        if (t.finished() && filter.matches(t) && t.finished_at_ms.value_or(0) <= before) {
            ids.push_back(id);
        }
    }
    remove_tasks(ctx, call.responder, std::move(ids));
}

}  // namespace

void register_task_remove_commands(Registry& r, const TaskContext& ctx) {
    r.add("task.remove", [ctx](Call& c) { task_remove(ctx, c); });
    r.add("task.clean", [ctx](Call& c) { task_clean(ctx, c); });
}

}  // namespace mpctl::daemon
