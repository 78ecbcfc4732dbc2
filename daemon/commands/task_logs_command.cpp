// task.logs: read the params and hand the stream to the LogStreamer (logs/log_streamer.hpp).

#include <algorithm>

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/task_context.hpp>

namespace mpctl::daemon {

namespace {

// params.from: where a client that lost its connection resumes each stream it had bytes of.
std::vector<LogStreamer::Request::Resume> read_resume(const nlohmann::json& from) {
    if (!from.is_array()) {
        proto::throw_invalid_params("params.from: expected an array");
    }
    std::vector<LogStreamer::Request::Resume> out;
    for (size_t i = 0; i < from.size(); ++i) {
        proto::Params e(from[i], "params.from[" + std::to_string(i) + "]");
        e.reject_unknown({"attempt", "stream", "stage", "offset"});
        LogStreamer::Request::Resume r;
        int64_t attempt = e.required<int64_t>("attempt");
        if (attempt < 1 || attempt > 1001) {
            proto::throw_invalid_params(e.path() + ".attempt: expected 1 to 1001");
        }
        r.attempt = static_cast<int>(attempt);
        r.stream = e.required<std::string>("stream");
        if (r.stream != "stdout" && r.stream != "stderr") {
            proto::throw_invalid_params(e.path() + R"(.stream: expected "stdout" or "stderr")");
        }
        if (auto stage = e.optional<int64_t>("stage")) {
            if (*stage < 0) {
                proto::throw_invalid_params(e.path() + ".stage: must not be negative");
            }
            r.stage = static_cast<size_t>(*stage);
        }
        int64_t offset = e.required<int64_t>("offset");
        if (offset < 0) {
            proto::throw_invalid_params(e.path() + ".offset: must not be negative");
        }
        r.offset = static_cast<uint64_t>(offset);
        out.push_back(std::move(r));
    }
    return out;
}

void task_logs(const TaskContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"id", "stream", "follow", "stage", "tail", "attempt", "from"});
    LogStreamer::Request req;
    req.task_id = read_id(p);
    req.follow = p.get_or<bool>("follow", false);
    std::string stream = p.get_or<std::string>("stream", "stdout");
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
    auto stage = p.optional<int64_t>("stage");
    if (stage && *stage < 0) {
        proto::throw_invalid_params("params.stage: must not be negative");
    }
    if (stage && req.want_stdout) {
        proto::throw_invalid_params(
            "params.stage: only stderr is kept per stage (stdout is the last stage's)");
    }
    if (auto tail = p.optional<int64_t>("tail")) {
        if (*tail < 0) {
            proto::throw_invalid_params("params.tail: must not be negative");
        }
        req.tail_lines = static_cast<uint64_t>(*tail);
    }
    auto attempt = p.optional<int64_t>("attempt");
    if (attempt && (*attempt < 1 || *attempt > 1001)) {
        proto::throw_invalid_params("params.attempt: expected 1 to 1001");
    }
    if (const auto* from = p.present("from"); from != nullptr && !from->is_null()) {
        req.from = read_resume(*from);
    }
    // What only the task can say: how many stages it has, how many attempts it may make.
    const Task& task = known_task(ctx, req.task_id);
    if (attempt) {
        int most = task.spec.retries() + 1;
        if (*attempt > most) {
            proto::throw_invalid_params("params.attempt: task " + std::to_string(req.task_id) +
                                        " makes at most " + std::to_string(most) +
                                        (most == 1 ? " attempt" : " attempts"));
        }
        req.attempt = static_cast<int>(*attempt);
    }
    if (stage) {
        size_t stages = std::max<size_t>(1, task.spec.pipeline().size());
        if (static_cast<size_t>(*stage) >= stages) {
            proto::throw_invalid_params("params.stage: task " + std::to_string(req.task_id) + " has " +
                                        std::to_string(stages) + (stages == 1 ? " stage" : " stages") +
                                        " (0 to " + std::to_string(stages - 1) + ")");
        }
        if (!task.spec.pipeline().empty()) {
            req.stage = static_cast<size_t>(*stage);
        }
    }
    after_ends_journaled(ctx, {req.task_id}, call.responder,
                         [ctx, responder = call.responder, req] { ctx.logs.start(responder, req); });
}

}  // namespace

void register_task_logs_command(Registry& r, const TaskContext& ctx) {
    r.add("task.logs", [ctx](Call& c) { task_logs(ctx, c); });
}

}  // namespace mpctl::daemon
