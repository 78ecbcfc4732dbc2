// task.submit and task.submit_batch: validate, journal (durable before the answer), then schedule. And
// task.restart, which submits finished tasks' specs again as new tasks.

#include <algorithm>
#include <functional>
#include <map>

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

// What the params cannot say alone: whether this daemon can contain tasks in cgroups, and whether the tasks
// of `after` exist. Checked once every spec of the request has parsed, so that a request with invalid params
// is refused as such whatever the daemon holds (the JSON Schemas can then say which ones those are).
// An attached task belongs to the connection that submitted it: if that closes first, the task is hung up
// (Scheduler::hang_up); if the task finishes first, the hook goes with it.
void attach(const TaskContext& ctx, const std::shared_ptr<Responder>& responder, int64_t id) {
    auto session = responder->session();
    if (!session || session->closed()) {
        ctx.scheduler.hang_up(id);
        return;
    }
    auto watch = std::make_shared<FutureTable::WatchId>(0);
    uint64_t hook = session->on_close([ctx, id, watch] {
        ctx.futures.unwatch(*watch);
        ctx.scheduler.hang_up(id);
    });
    *watch = ctx.futures.watch({id}, [weak = std::weak_ptr<Session>(session), hook](const Task&) {
        if (auto s = weak.lock()) {
            s->remove_close_hook(hook);
        }
    });
}

void check_against_state(const TaskContext& ctx, const proto::TaskSpec& spec, const std::string& path) {
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
}

void refuse_when_stopping(const TaskContext& ctx) {
    if (ctx.scheduler.starting_stopped()) {
        throw RequestError(ErrorCode::shutting_down, "the daemon is shutting down and takes no new tasks");
    }
}

using SpecPath = std::function<std::string(size_t)>;  // how errors name the spec at an index

// The descriptors passed on this connection for the specs that read stdin from one ("stdin_fd"), in
// order; all are claimed or none.
std::vector<std::shared_ptr<common::UniqueFd>> claim_passed_stdin(
    const std::vector<proto::TaskSpec>& specs, const SpecPath& path_of,
    const std::shared_ptr<Responder>& responder) {
    std::vector<std::shared_ptr<common::UniqueFd>> fds(specs.size());
    std::vector<size_t> wanting;
    for (size_t i = 0; i < specs.size(); ++i) {
        if (specs[i].stdin_passed) {
            wanting.push_back(i);
        }
    }
    if (wanting.empty()) {
        return fds;
    }
    auto session = responder->session();
    if (session && session->passed_fds_dropped() > 0) {
        // Which request a closed one belonged to is lost, so any waiting one may be another request's:
        // none is handed out, and the client starts again with a clean queue.
        size_t dropped = session->passed_fds_dropped();
        session->forget_passed_fds();
        proto::throw_invalid_params(
            path_of(wanting.front()) + ".stdin_fd: " + std::to_string(dropped) +
            " descriptor(s) passed with SCM_RIGHTS on this connection were closed unclaimed, since at most " +
            std::to_string(Session::k_max_passed_fds) +
            " may wait for their requests; the waiting ones are closed too: pass each with its request");
    }
    std::vector<common::UniqueFd> taken;
    for (size_t i = 0; session && i < wanting.size(); ++i) {
        common::UniqueFd fd = session->take_passed_fd();
        if (!fd) {
            break;
        }
        taken.push_back(std::move(fd));
    }
    if (taken.size() < wanting.size()) {
        proto::throw_invalid_params(path_of(wanting[taken.size()]) +
                                    ".stdin_fd: " + std::to_string(wanting.size()) +
                                    " descriptor(s) needed but " + std::to_string(taken.size()) +
                                    " passed with SCM_RIGHTS on this connection");
    }
    for (size_t k = 0; k < wanting.size(); ++k) {
        fds[wanting[k]] = std::make_shared<common::UniqueFd>(std::move(taken[k]));
    }
    return fds;
}

// Adds the tasks, journals them in one transaction, and calls DONE once it is committed.
void submit_tasks(const TaskContext& ctx, std::vector<proto::TaskSpec> specs, const SpecPath& path_of,
                  std::function<void(const std::vector<int64_t>&)> done,
                  const std::shared_ptr<Responder>& responder) {
    auto passed_stdin = claim_passed_stdin(specs, path_of, responder);
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
        bool attached = spec.attached;
        Task& t = ctx.scheduler.add(std::move(spec), now);
        t.env_id = env_id;
        t.attached = attached;
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
                if (const Task* t = ctx.scheduler.find(id); t != nullptr && t->attached) {
                    attach(ctx, responder, id);
                }
                ctx.scheduler.schedule(id);
            }
        });
    };
    ctx.store.insert_tasks(tasks, new_environments, std::move(committed));
}

void task_submit(const TaskContext& ctx, Call& call) {
    refuse_when_stopping(ctx);
    std::vector<proto::TaskSpec> specs;
    specs.push_back(proto::parse_task_spec(call.params.raw(), "params"));
    check_against_state(ctx, specs.front(), "params");
    submit_tasks(
        ctx, std::move(specs), [](size_t) { return std::string("params"); },
        [ctx, responder = call.responder](const std::vector<int64_t>& ids) {
            responder->result_text(ctx.view.text(known_task(ctx, ids.front())));
        },
        call.responder);
}

std::string entry_path(size_t i) {
    return "params.tasks[" + std::to_string(i) + "]";
}

void task_submit_batch(const TaskContext& ctx, const std::shared_ptr<HeapTrim>& trim, Call& call) {
    refuse_when_stopping(ctx);
    call.params.reject_unknown({"defaults", "tasks"});
    json defaults = call.params.get_or<json>("defaults", json::object());
    if (!defaults.is_object()) {
        proto::throw_invalid_params("params.defaults: expected an object");
    }
    // The defaults are checked alone first: an error in them is theirs, not the first entry's. Their
    // environment (most of a batch's bytes, the same for every entry) is parsed there once and shared, not
    // copied into each entry and parsed again.
    std::shared_ptr<const proto::Environment> default_env =
        proto::parse_spec_defaults(defaults, "params.defaults").env;
    defaults.erase("env");
    json entries = call.params.required<json>("tasks");
    if (!entries.is_array() || entries.empty() || entries.size() > k_max_batch) {
        proto::throw_invalid_params("params.tasks: expected an array of 1 to " + std::to_string(k_max_batch) +
                                    " task specs");
    }
    std::vector<proto::TaskSpec> specs;
    specs.reserve(entries.size());
    size_t passed_stdin = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
        if (!entries[i].is_object()) {
            proto::throw_invalid_params(entry_path(i) + ": expected an object");
        }
        specs.push_back(
            proto::parse_task_spec(proto::merge_spec_defaults(defaults, entries[i]), entry_path(i)));
        auto own_env = entries[i].find("env");
        if (default_env && (own_env == entries[i].end() || own_env->is_null())) {
            specs.back().env = default_env;
        }
        // Every descriptor a request claims was passed before its line ended, and no more than that many
        // wait on a connection: a request that needs more could never be served.
        if (specs.back().stdin_passed && ++passed_stdin > Session::k_max_passed_fds) {
            proto::throw_invalid_params(entry_path(i) + ".stdin_fd: at most " +
                                        std::to_string(Session::k_max_passed_fds) +
                                        " tasks of one request may read a passed descriptor");
        }
    }
    for (size_t i = 0; i < specs.size(); ++i) {
        check_against_state(ctx, specs[i], entry_path(i));
    }
    submit_tasks(
        ctx, std::move(specs), entry_path,
        [responder = call.responder, trim](const std::vector<int64_t>& ids) {
            responder->result({{"ids", ids}});
            if (ids.size() >= k_trim_after_batch) {
                trim->after_burst();
            }
        },
        call.responder);
}

// The spec a restart of finished task T submits: T's own, as a task of its own (new id, label restart_of,
// not a map's any more), its environment ENV, in T's pool unless that is gone or a map's, and after the
// restarts of the tasks it waited for that this request restarts too (RESTARTED: old id -> new id).
proto::TaskSpec restart_spec(const TaskContext& ctx, const Task& t,
                             std::shared_ptr<const proto::Environment> env,
                             const std::map<int64_t, int64_t>& restarted) {
    proto::TaskSpec spec = t.spec.expanded();
    spec.env = std::move(env);
    spec.attached = false;
    spec.labels.erase("map");
    spec.labels["restart_of"] = std::to_string(t.id);
    check_against_state(ctx, spec, "params");  // before the dependencies name tasks not added yet
    for (int64_t& dep : spec.after) {
        if (auto it = restarted.find(dep); it != restarted.end()) {
            dep = it->second;
        }
    }
    bool ordinary_pool = false;
    for (const PoolInfo& pool : ctx.scheduler.pools()) {
        ordinary_pool = ordinary_pool || (pool.name == spec.pool && !pool.transient);
    }
    if (!ordinary_pool) {
        spec.pool = proto::k_default_pool;
    }
    return spec;
}

// The tasks of IDS, which must all be known and finished and restartable (throws otherwise).
void check_restartable(const TaskContext& ctx, const std::vector<int64_t>& ids) {
    require_known(ctx, ids);
    json unfinished = json::array();
    for (int64_t id : ids) {
        const Task& t = known_task(ctx, id);
        if (!t.finished()) {
            unfinished.push_back(id);
        } else if (t.spec.stdin_passed()) {
            throw RequestError(ErrorCode::invalid_state,
                               "task " + std::to_string(id) +
                                   " read a descriptor its client passed, which is gone: submit it again",
                               {{"ids", json::array({id})}});
        }
    }
    if (!unfinished.empty()) {
        throw RequestError(ErrorCode::invalid_state,
                           "task " + unfinished.front().dump() +
                               (unfinished.size() > 1 ? " and others" : "") +
                               " not finished: only a finished task is restarted",
                           {{"ids", unfinished}});
    }
}

// A client that lost the connection its attached task belonged to (the daemon died and came back, which
// re-adopted the task or kept it queued) takes it back: `mpctl run` after a reconnect.
void task_attach(const TaskContext& ctx, Call& call) {
    call.params.reject_unknown({"id"});
    int64_t id = read_id(call.params);
    const Task& t = known_task(ctx, id);
    if (ctx.scheduler.attach(id)) {
        attach(ctx, call.responder, id);
    }
    call.responder->result_text(ctx.view.text(t));
}

void task_restart(const TaskContext& ctx, Call& call) {
    refuse_when_stopping(ctx);
    call.params.reject_unknown({"id", "ids"});
    std::vector<int64_t> ids = read_ids(call.params);
    check_restartable(ctx, ids);
    // In id order, so that a task's restarted dependencies get their new ids before it.
    std::sort(ids.begin(), ids.end());
    // A finished task let go of its environment (Scheduler::finish): read it back from the journal, where
    // commits run, then submit.
    std::vector<int64_t> env_ids;
    for (int64_t id : ids) {
        if (int64_t env = known_task(ctx, id).env_id; env != 0) {
            env_ids.push_back(env);
        }
    }
    std::sort(env_ids.begin(), env_ids.end());
    env_ids.erase(std::unique(env_ids.begin(), env_ids.end()), env_ids.end());
    auto responder = call.responder;
    ctx.store.read_environments(env_ids, [ctx, ids, responder](common::Result<Store::EnvironmentsRead> envs) {
        guarded(responder, [&] {
            if (!envs) {
                responder->error(ErrorCode::io_error,
                                 "could not read the tasks' environments back: " + envs.error().message());
                return;
            }
            refuse_when_stopping(ctx);
            check_restartable(ctx, ids);  // again: one may have been removed meanwhile
            std::vector<proto::TaskSpec> specs;
            std::map<int64_t, int64_t> restarted;
            int64_t next = ctx.scheduler.next_id();  // submit_tasks adds them in order, with the next ids
            for (int64_t id : ids) {
                const Task& t = known_task(ctx, id);
                std::shared_ptr<const proto::Environment> env;
                if (t.env_id != 0) {
                    env = envs->at(t.env_id);
                }
                specs.push_back(restart_spec(ctx, t, std::move(env), restarted));
                restarted[id] = next++;
            }
            submit_tasks(
                ctx, std::move(specs), [](size_t) { return std::string("params"); },
                [responder, ids](const std::vector<int64_t>& new_ids) {
                    json pairs = json::array();
                    for (size_t i = 0; i < ids.size(); ++i) {
                        pairs.push_back({{"id", ids[i]}, {"new_id", new_ids[i]}});
                    }
                    responder->result({{"ids", new_ids}, {"restarted", pairs}});
                },
                responder);
        });
    });
}

}  // namespace

void register_task_submit_commands(Registry& r, const TaskContext& ctx) {
    r.add("task.submit", [ctx](Call& c) { task_submit(ctx, c); });
    auto trim = std::make_shared<HeapTrim>(ctx.io);
    r.add("task.submit_batch", [ctx, trim](Call& c) { task_submit_batch(ctx, trim, c); });
    r.add("task.restart", [ctx](Call& c) { task_restart(ctx, c); });
    r.add("task.attach", [ctx](Call& c) { task_attach(ctx, c); });
}

}  // namespace mpctl::daemon
