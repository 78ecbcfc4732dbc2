// task.submit and task.submit_batch: validate, journal (durable before the answer), then schedule.

#include <mpctl/common/time.hpp>
#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/heap_trim.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/task_context.hpp>
#include <mpctl/daemon/server/session.hpp>

namespace mpctl::daemon {

using nlohmann::json;
using proto::ErrorCode;
using proto::RequestError;

namespace {

constexpr size_t k_max_batch = 100000;
// After a batch of at least this many tasks, the memory it needed only until its commit goes back to the
// system (heap_trim.hpp): without it, 100,000 queued tasks filled in batches of 10,000 kept 70 MiB
// resident where they use 49 (bench_scale.py).
constexpr size_t k_trim_after_batch = 1000;

proto::TaskSpec validated_spec(const TaskContext& ctx, const json& value, const std::string& path) {
    proto::TaskSpec spec = proto::parse_task_spec(value, path);
    if (spec.cgroup && ctx.cgroups.unavailable()) {
        proto::throw_invalid_params(
            path + ".cgroup: containment is not available here: " + *ctx.cgroups.unavailable());
    }
    for (int64_t dep : spec.after) {
        if (ctx.scheduler.find_durable(dep) == nullptr) {
            throw RequestError(ErrorCode::unknown_id, path + ".after: no task " + std::to_string(dep),
                               {{"id", dep}});
        }
    }
    return spec;
}

void refuse_when_stopping(const TaskContext& ctx) {
    if (ctx.scheduler.starting_stopped()) {
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
void submit_tasks(const TaskContext& ctx, std::vector<proto::TaskSpec> specs,
                  std::function<void(const std::vector<int64_t>&)> done,
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
            auto entry = ctx.environments.intern(spec.env, is_new);
            spec.env = entry.env;
            env_id = entry.id;
            if (is_new) {
                new_environments.push_back(entry);
            }
        }
        Task& t = ctx.scheduler.add(std::move(spec), now);
        t.env_id = env_id;
        t.passed_stdin = std::move(passed_stdin[i]);
        ids.push_back(t.id);
        tasks.push_back(&t);
    }
    auto committed = [ctx, ids, done = std::move(done), responder](const common::Result<void>& r) {
        guarded(responder, [&] {
            if (!r) {
                for (int64_t id : ids) {
                    ctx.scheduler.discard(id);
                }
                responder->error(ErrorCode::io_error, "could not record the task: " + r.error().message());
                return;
            }
            for (int64_t id : ids) {
                ctx.scheduler.make_durable(id);
            }
            // Answer first, then start them: the client is not kept waiting for our spawns. An answer that
            // could not be written does not keep the committed tasks from running.
            guarded(responder, [&] { done(ids); });
            for (int64_t id : ids) {
                ctx.scheduler.schedule(id);
            }
        });
    };
    ctx.store.insert_tasks(tasks, new_environments, std::move(committed));
}

void task_submit(const TaskContext& ctx, Call& call) {
    refuse_when_stopping(ctx);
    std::vector<proto::TaskSpec> specs;
    specs.push_back(validated_spec(ctx, call.params.raw(), "params"));
    submit_tasks(
        ctx, std::move(specs),
        [ctx, responder = call.responder](const std::vector<int64_t>& ids) {
            responder->result_text(ctx.view.text(known_task(ctx, ids.front())));
        },
        call.responder);
}

void task_submit_batch(const TaskContext& ctx, const std::shared_ptr<HeapTrim>& trim, Call& call) {
    refuse_when_stopping(ctx);
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
        specs.push_back(validated_spec(ctx, proto::merge_spec_defaults(defaults, entries[i]), path));
        if (default_env && !entries[i].contains("env")) {
            specs.back().env = default_env;
        }
    }
    submit_tasks(
        ctx, std::move(specs),
        [responder = call.responder, trim](const std::vector<int64_t>& ids) {
            responder->result({{"ids", ids}});
            if (ids.size() >= k_trim_after_batch) {
                trim->after_burst();
            }
        },
        call.responder);
}

}  // namespace

void register_task_submit_commands(Registry& r, const TaskContext& ctx) {
    r.add("task.submit", [ctx](Call& c) { task_submit(ctx, c); });
    auto trim = std::make_shared<HeapTrim>(ctx.io);
    r.add("task.submit_batch", [ctx, trim](Call& c) { task_submit_batch(ctx, trim, c); });
}

}  // namespace mpctl::daemon
