// The pool family: pool.set, pool.list.

#include <limits>

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/pool_context.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/server/session.hpp>
#include <mpctl/daemon/slurm/pool_backend.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

json pool_json(const PoolContext& ctx, const PoolInfo& p) {
    json j = {{"name", p.name},       {"workers", p.workers}, {"running", p.running},
              {"pending", p.pending}, {"waiting", p.waiting}, {"transient", p.transient},
              {"halted", p.halted}};
    j["warm"] = ctx.warm.describe(p.name);
    j["backend"] = ctx.slurm.describe(p.name);
    return j;
}

// pool.set's backend params over CURRENT, the pool's Slurm settings (nullopt: it runs its tasks here).
// backend "local" makes it local; no backend keeps what it has, with the settings given.
std::optional<slurm::PoolSettings> read_backend(const Call& call,
                                                std::optional<slurm::PoolSettings> current) {
    slurm::BackendKeys keys;
    keys.backend = call.params.optional<std::string>("backend");
    keys.partition = call.params.optional<std::string>("partition");
    keys.account = call.params.optional<std::string>("account");
    if (const json* args = call.params.present("slurm_args"); args != nullptr && !args->is_null()) {
        if (!args->is_array() ||
            !std::all_of(args->begin(), args->end(), [](const json& a) { return a.is_string(); })) {
            proto::throw_invalid_params(
                "params.slurm_args: up to 64 sbatch options, each a string starting with -- (\"--qos=low\")");
        }
        keys.slurm_args = args->get<std::vector<std::string>>();
    }
    auto settings = slurm::apply_backend_keys(keys, std::move(current));
    if (!settings) {
        proto::throw_invalid_params("params." + settings.error().message());
    }
    return std::move(*settings);
}

// pool.set's worker params over WARM, the pool's current ones (nullopt: a cold pool). worker null makes
// the pool cold; no worker keeps what the pool has, with the limits given.
std::optional<WorkerSpec> read_worker(const Call& call, std::optional<WorkerSpec> current) {
    std::optional<WorkerSpec> spec = std::move(current);
    if (const json* given = call.params.present("worker")) {  // null is a cold pool
        const json& w = *given;
        if (w.is_null()) {
            spec.reset();
        } else {
            if (!w.is_array() || w.empty() || !std::all_of(w.begin(), w.end(), [](const json& x) {
                    return x.is_string() && !x.get_ref<const std::string&>().empty();
                })) {
                proto::throw_invalid_params(
                    "params.worker: a command, as a non-empty array of non-empty strings");
            }
            WorkerSpec fresh;
            fresh.argv = w.get<std::vector<std::string>>();
            spec = std::move(fresh);
        }
    }
    auto max_tasks = call.params.optional<int64_t>("max_tasks_per_worker");
    auto idle = call.params.optional<double>("worker_idle_timeout");
    if ((max_tasks || idle) && !spec) {
        proto::throw_invalid_params(
            "params.worker: max_tasks_per_worker and worker_idle_timeout are for a warm pool");
    }
    if (max_tasks) {
        if (*max_tasks < 1 || *max_tasks > std::numeric_limits<int>::max()) {
            proto::throw_invalid_params("params.max_tasks_per_worker: must be between 1 and 2147483647");
        }
        spec->max_tasks = static_cast<int>(*max_tasks);
    }
    if (idle) {
        if (!(*idle > 0 && *idle <= 86400 * 365)) {
            proto::throw_invalid_params("params.worker_idle_timeout: seconds, more than 0");
        }
        spec->idle_timeout_s = *idle;
    }
    return spec;
}

void pool_set(const PoolContext& ctx, Call& call) {
    call.params.reject_unknown({"name", "workers", "transient", "halt_after_failures", "worker",
                                "max_tasks_per_worker", "worker_idle_timeout", "backend", "partition",
                                "account", "slurm_args"});
    std::string name = call.params.required<std::string>("name");
    if (!proto::valid_pool_name(name)) {
        proto::throw_invalid_params("params.name: 1-64 characters of letters, digits, '_', '-' and '.'");
    }
    int workers = call.params.required<int>("workers");
    if (workers < 1 || workers > 100000) {
        proto::throw_invalid_params("params.workers: must be between 1 and 100000");
    }
    bool transient = call.params.get_or<bool>("transient", false);
    auto halt_after = call.params.optional<int64_t>("halt_after_failures");
    if (halt_after && (*halt_after < 1 || *halt_after > std::numeric_limits<int>::max())) {
        proto::throw_invalid_params("params.halt_after_failures: must be between 1 and 2147483647");
    }
    if (halt_after && !transient) {
        proto::throw_invalid_params("params.halt_after_failures: only a transient pool halts");
    }
    int halt_after_failures = static_cast<int>(halt_after.value_or(0));
    std::optional<WorkerSpec> worker = read_worker(call, ctx.warm.spec(name));
    // A warm pool runs only what its worker understands: not what every submit without --pool runs. (A
    // transient one, as a Python executor makes, ends its workers when it is dropped with its connection.)
    if (worker && name == proto::k_default_pool) {
        proto::throw_invalid_params("params.worker: the default pool cannot be warm");
    }
    std::optional<slurm::PoolSettings> backend = read_backend(call, ctx.slurm.settings(name));
    if (backend && name == proto::k_default_pool) {
        proto::throw_invalid_params("params.backend: the default pool runs its tasks here");
    }
    if (backend && worker) {
        proto::throw_invalid_params("params.backend: a warm pool's workers run here, not in Slurm");
    }
    if (transient) {
        // A pool for this connection (a map): cancelled and dropped when the connection is gone (see
        // Scheduler::release_transient_pool). Journaled while it exists, so that a restart after a crash
        // knows its queue has nobody to collect it.
        if (name == proto::k_default_pool) {
            proto::throw_invalid_params("params.transient: the default pool cannot be transient");
        }
        // Well-formed params the pool's state refuses: invalid_state, as for a task that is not running.
        for (const auto& p : ctx.scheduler.pools()) {
            if (p.name == name && !p.transient) {
                throw proto::RequestError(proto::ErrorCode::invalid_state,
                                          "pool " + name + " exists and is not transient");
            }
        }
    }
    // Durable first, like a submit: a size that was acknowledged survives a restart.
    Scheduler& scheduler = ctx.scheduler;
    auto recorded = [ctx, &scheduler, name, workers, transient, halt_after_failures, worker, backend,
                     responder = call.responder](const common::Result<void>& r) {
        guarded(responder, [&] {
            if (!r) {
                responder->error(proto::ErrorCode::io_error,
                                 "could not record the pool: " + r.error().message());
                return;
            }
            scheduler.set_pool_workers(name, workers, transient, halt_after_failures);
            ctx.warm.set_pool(name, worker, workers);
            ctx.slurm.set_pool(name, backend);
            if (transient) {
                auto session = responder->session();
                if (!session) {
                    scheduler.release_transient_pool(name);  // its owner left before it was made
                    return;
                }
                session->when_closed([&scheduler, name] { scheduler.release_transient_pool(name); });
            }
            for (const auto& p : scheduler.pools()) {
                if (p.name == name) {
                    responder->result(pool_json(ctx, p));
                    return;
                }
            }
            responder->result({{"name", name}, {"workers", workers}});
        });
    };
    ctx.store.set_pool(name, workers, std::move(recorded), transient,
                       worker ? proto::dump_json(to_json(*worker)) : std::string(),
                       backend ? proto::dump_json(to_json(*backend)) : std::string());
}

void pool_delete(const PoolContext& ctx, Call& call) {
    call.params.reject_unknown({"name"});
    std::string name = call.params.required<std::string>("name");
    if (!proto::valid_pool_name(name)) {
        proto::throw_invalid_params("params.name: 1-64 characters of letters, digits, '_', '-' and '.'");
    }
    if (name == proto::k_default_pool) {
        proto::throw_invalid_params("params.name: the default pool cannot be deleted");
    }
    if (auto why = ctx.scheduler.why_not_delete_pool(name)) {
        throw proto::RequestError(proto::ErrorCode::invalid_state, *why);
    }
    Scheduler& scheduler = ctx.scheduler;
    WarmSpawner& warm = ctx.warm;
    SlurmSpawner& slurm = ctx.slurm;
    ctx.store.delete_pool(
        name, [&scheduler, &warm, &slurm, name, responder = call.responder](const common::Result<void>& r) {
            guarded(responder, [&] {
                if (!r) {
                    responder->error(proto::ErrorCode::io_error,
                                     "could not delete the pool: " + r.error().message());
                    return;
                }
                // Checked again: a task may have been submitted to it meanwhile. It keeps
                // the pool then, at its size until the next start (the row is gone, so the
                // start gives it the default size).
                if (auto why = scheduler.why_not_delete_pool(name)) {
                    throw proto::RequestError(proto::ErrorCode::invalid_state, *why);
                }
                scheduler.delete_pool(name);
                warm.set_pool(name, std::nullopt, 0);  // its workers end
                slurm.set_pool(name, std::nullopt);
                responder->result({{"name", name}, {"deleted", true}});
            });
        });
}

void pool_list(const PoolContext& ctx, Call& call) {
    call.params.reject_unknown({});
    json pools = json::array();
    for (const auto& p : ctx.scheduler.pools()) {
        pools.push_back(pool_json(ctx, p));
    }
    call.responder->result({{"pools", std::move(pools)}});
}

}  // namespace

void register_pool_commands(Registry& r, const PoolContext& ctx) {
    r.add("pool.set", [ctx](Call& c) { pool_set(ctx, c); });
    r.add("pool.list", [ctx](Call& c) { pool_list(ctx, c); });
    r.add("pool.delete", [ctx](Call& c) { pool_delete(ctx, c); });
}

}  // namespace mpctl::daemon
