// task.wait and task.as_completed: read the params and start a TaskWait (task_wait.hpp).

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/task_wait.hpp>

namespace mpctl::daemon {

namespace {

void start_wait(const TaskContext& ctx, Call& call, bool stream) {
    const auto& p = call.params;
    p.reject_unknown(stream ? std::initializer_list<const char*>{"ids", "id", "timeout", "brief"}
                            : std::initializer_list<const char*>{"ids", "id", "timeout", "any"});
    TaskWait::Options options;
    options.ids = read_ids(p);
    options.any = !stream && p.get_or<bool>("any", false);
    options.stream = stream;
    options.brief = stream && p.get_or<bool>("brief", false);
    options.timeout = read_timeout(p);
    require_known(ctx, options.ids);
    after_ends_journaled(ctx, options.ids, call.responder, [ctx, responder = call.responder, options] {
        TaskWait::start(ctx, responder, options);
    });
}

}  // namespace

void register_task_wait_commands(Registry& r, const TaskContext& ctx) {
    r.add("task.wait", [ctx](Call& c) { start_wait(ctx, c, false); });
    r.add("task.as_completed", [ctx](Call& c) { start_wait(ctx, c, true); });
}

}  // namespace mpctl::daemon
