// task.wait and task.as_completed: read the params and start a TaskWait (task_wait.hpp).

#include <algorithm>

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/task_wait.hpp>

namespace mpctl::daemon {

namespace {

void start_wait(const TaskContext& ctx, Call& call, bool stream) {
    const auto& p = call.params;
    p.reject_unknown(stream ? std::initializer_list<const char*>{"ids", "id", "timeout"}
                            : std::initializer_list<const char*>{"ids", "id", "timeout", "any"});
    TaskWait::Options options;
    options.ids = read_ids(p);
    options.any = !stream && p.get_or<bool>("any", false);
    options.stream = stream;
    options.timeout = read_timeout(p);
    require_known(ctx, options.ids);
    bool some_finished = std::any_of(options.ids.begin(), options.ids.end(),
                                     [&](int64_t id) { return known_task(ctx, id).finished(); });
    if (!some_finished) {
        TaskWait::start(ctx, call.responder, std::move(options));
        return;
    }
    // An end the client hears of must be one a crash cannot take back (future_table.hpp).
    ctx.futures.after_journal([ctx, responder = call.responder, options = std::move(options)]() mutable {
        if (!responder->session()) {
            return;  // the client left meanwhile: nothing to park
        }
        guarded(responder, [&] {
            require_known(ctx, options.ids);  // forgotten meanwhile (task.remove): said as at once
            TaskWait::start(ctx, responder, std::move(options));
        });
    });
}

}  // namespace

void register_task_wait_commands(Registry& r, const TaskContext& ctx) {
    r.add("task.wait", [ctx](Call& c) { start_wait(ctx, c, false); });
    r.add("task.as_completed", [ctx](Call& c) { start_wait(ctx, c, true); });
}

}  // namespace mpctl::daemon
