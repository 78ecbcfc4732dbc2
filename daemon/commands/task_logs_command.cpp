// task.logs: read the params and hand the stream to the LogStreamer (logs/log_streamer.hpp).

#include <algorithm>

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/task_context.hpp>

namespace mpctl::daemon {

namespace {

void task_logs(const TaskContext& ctx, Call& call) {
    call.params.reject_unknown({"id", "stream", "follow", "stage", "tail"});
    int64_t id = call.params.required<int64_t>("id");
    const Task& task = known_task(ctx, id);
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
        size_t stages = std::max<size_t>(1, task.spec.pipeline().size());
        if (*stage < 0 || static_cast<size_t>(*stage) >= stages) {
            proto::throw_invalid_params("params.stage: task " + std::to_string(id) + " has " +
                                        std::to_string(stages) + (stages == 1 ? " stage" : " stages") +
                                        " (0 to " + std::to_string(stages - 1) + ")");
        }
        if (req.want_stdout) {
            proto::throw_invalid_params(
                "params.stage: only stderr is kept per stage (stdout is the last stage's)");
        }
        if (!task.spec.pipeline().empty()) {
            req.stage = static_cast<size_t>(*stage);
        }
    }
    if (auto tail = call.params.optional<int64_t>("tail")) {
        if (*tail < 0) {
            proto::throw_invalid_params("params.tail: must not be negative");
        }
        req.tail_lines = static_cast<uint64_t>(*tail);
    }
    ctx.logs.start(call.responder, req);
}

}  // namespace

void register_task_logs_command(Registry& r, const TaskContext& ctx) {
    r.add("task.logs", [ctx](Call& c) { task_logs(ctx, c); });
}

}  // namespace mpctl::daemon
