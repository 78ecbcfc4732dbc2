// The manager's queues: queue.put, queue.get, queue.info, queue.list, queue.delete (QueueTable).

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/manager_context.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/sync_params.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

constexpr size_t k_max_values = 10000;  // a put's values, a get's count
constexpr int64_t k_max_maxsize = 1000000000;

void queue_put(const ManagerContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"name", "values", "maxsize", "memory", "nonblock", "timeout"});
    QueueTable::Put r;
    r.name = read_sync_name(p);
    const json* values = p.present("values");
    if (values == nullptr || values->is_null()) {
        proto::throw_invalid_params("params.values: required");
    }
    if (!values->is_array() || values->empty() || values->size() > k_max_values) {
        proto::throw_invalid_params("params.values: expected an array of 1 to 10000 values");
    }
    r.values.reserve(values->size());
    for (const auto& v : *values) {
        r.values.push_back(proto::dump_json(v));
    }
    r.maxsize = p.optional<int64_t>("maxsize");
    if (r.maxsize && (*r.maxsize < 0 || *r.maxsize > k_max_maxsize)) {
        proto::throw_invalid_params("params.maxsize: must be between 0 and 1000000000");
    }
    r.memory = p.optional<bool>("memory");
    auto wait = read_nonblock_or_timeout(p);
    r.nonblock = wait.nonblock;
    r.timeout = wait.timeout;
    ctx.queues.put(std::move(r), call.responder);
}

void queue_get(const ManagerContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"name", "count", "nonblock", "timeout"});
    QueueTable::Get r;
    r.name = read_sync_name(p);
    int64_t count = p.get_or<int64_t>("count", 1);
    if (count < 1 || count > static_cast<int64_t>(k_max_values)) {
        proto::throw_invalid_params("params.count: must be between 1 and 10000");
    }
    r.count = static_cast<size_t>(count);
    auto wait = read_nonblock_or_timeout(p);
    r.nonblock = wait.nonblock;
    r.timeout = wait.timeout;
    ctx.queues.get(r, call.responder);
}

}  // namespace

void register_queue_commands(Registry& r, const ManagerContext& ctx) {
    r.add("queue.put", [ctx](Call& c) { queue_put(ctx, c); });
    r.add("queue.get", [ctx](Call& c) { queue_get(ctx, c); });
    r.add("queue.info", [ctx](Call& c) {
        c.params.reject_unknown({"name"});
        c.responder->result(ctx.queues.info(read_sync_name(c.params)));
    });
    r.add("queue.list", [ctx](Call& c) {
        c.params.reject_unknown({});
        c.responder->result({{"queues", ctx.queues.list()}});
    });
    r.add("queue.delete", [ctx](Call& c) {
        c.params.reject_unknown({"name"});
        ctx.queues.remove(read_sync_name(c.params), c.responder);
    });
}

}  // namespace mpctl::daemon
