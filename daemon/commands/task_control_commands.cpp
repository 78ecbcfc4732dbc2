// task.cancel and task.signal.

#include <mpctl/common/signals.hpp>
#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/task_context.hpp>

namespace mpctl::daemon {

using nlohmann::json;
using proto::ErrorCode;
using proto::RequestError;

namespace {

const char* outcome_name(Scheduler::CancelResult r) {
    switch (r) {
        case Scheduler::CancelResult::cancelled:
            return "cancelled";
        case Scheduler::CancelResult::terminating:
            return "terminating";
        case Scheduler::CancelResult::running:
            return "running";
        case Scheduler::CancelResult::already_finished:
            return "finished";
    }
    return "";
}

void task_cancel(const TaskContext& ctx, Call& call) {
    call.params.reject_unknown({"ids", "id", "force"});
    auto ids = read_ids(call.params);
    bool force = call.params.get_or<bool>("force", false);
    require_known(ctx, ids);
    json results = json::array();
    for (int64_t id : ids) {
        const char* outcome = outcome_name(ctx.scheduler.cancel(id, force));
        results.push_back(
            {{"id", id}, {"outcome", outcome}, {"state", proto::to_string(known_task(ctx, id).state)}});
    }
    call.responder->result({{"results", std::move(results)}});
}

void task_signal(const TaskContext& ctx, Call& call) {
    call.params.reject_unknown({"id", "signal"});
    int64_t id = read_id(call.params);
    json sig = call.params.get_or<json>("signal", json("TERM"));
    std::optional<int> signo;
    if (auto n = proto::Params::integer(sig)) {
        // The numbers a name may also be written as ("9"): 1 to SIGRTMAX, which is 64 on Linux.
        if (*n >= 1 && *n <= 64) {
            signo = static_cast<int>(*n);
        }
    } else if (sig.is_string()) {
        signo = common::parse_signal(sig.get<std::string>());
    }
    if (!signo) {
        proto::throw_invalid_params("params.signal: expected a signal name (TERM, SIGKILL, ...) or number");
    }
    const Task& t = known_task(ctx, id);
    if (!ctx.scheduler.signal(id, *signo)) {
        throw RequestError(
            ErrorCode::invalid_state,
            "task " + std::to_string(id) + " is " + std::string(proto::to_string(t.state)) + ", not running",
            {{"state", proto::to_string(t.state)}});
    }
    call.responder->result({{"id", id}, {"signal", *signo}, {"signal_name", common::signal_name(*signo)}});
}

}  // namespace

void register_task_control_commands(Registry& r, const TaskContext& ctx) {
    r.add("task.cancel", [ctx](Call& c) { task_cancel(ctx, c); });
    r.add("task.signal", [ctx](Call& c) { task_signal(ctx, c); });
}

}  // namespace mpctl::daemon
