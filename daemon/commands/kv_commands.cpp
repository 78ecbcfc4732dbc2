// The manager's dicts: kv.set, kv.get, kv.del, kv.list, kv.cas, kv.watch (KvTable).

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/manager_context.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/sync_params.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

constexpr size_t k_max_key = 4096;  // characters

std::string read_key(const proto::Params& p) {
    std::string key = p.required<std::string>("key");
    size_t n = proto::count_characters(key);
    if (n < 1 || n > k_max_key) {
        proto::throw_invalid_params("params.key: 1 to 4096 characters");
    }
    return key;
}

// KEY's value as JSON text, where null is the value null; nullopt when absent.
std::optional<std::string> read_value(const proto::Params& p, const char* key) {
    const json* v = p.present(key);
    if (v == nullptr) {
        return std::nullopt;
    }
    return proto::dump_json(*v);
}

std::string required_value(const proto::Params& p, const char* key) {
    auto v = read_value(p, key);
    if (!v) {
        proto::throw_invalid_params(std::string("params.") + key + ": required");
    }
    return *v;
}

void kv_cas(const ManagerContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"name", "key", "expect", "absent", "value", "delete"});
    KvTable::Change c;
    c.name = read_sync_name(p);
    c.key = read_key(p);
    c.compare = true;
    c.expect = read_value(p, "expect");
    bool absent = p.get_or<bool>("absent", false);
    if (c.expect.has_value() == absent) {
        proto::throw_invalid_params(absent ? "params.absent: not with expect (one or the other)"
                                           : "params.expect: required (or absent: true)");
    }
    c.value = read_value(p, "value");
    bool del = p.get_or<bool>("delete", false);
    if (c.value.has_value() == del) {
        proto::throw_invalid_params(del ? "params.delete: not with value (one or the other)"
                                        : "params.value: required (or delete: true)");
    }
    ctx.dicts.change(std::move(c), call.responder);
}

}  // namespace

void register_kv_commands(Registry& r, const ManagerContext& ctx) {
    r.add("kv.set", [ctx](Call& c) {
        c.params.reject_unknown({"name", "key", "value"});
        KvTable::Change change;
        change.name = read_sync_name(c.params);
        change.key = read_key(c.params);
        change.value = required_value(c.params, "value");
        ctx.dicts.change(std::move(change), c.responder);
    });
    r.add("kv.get", [ctx](Call& c) {
        c.params.reject_unknown({"name", "key"});
        std::string name = read_sync_name(c.params);
        std::string key = read_key(c.params);
        auto responder = c.responder;
        ctx.dicts.when_settled(name, responder, [ctx, name, key, responder] {
            responder->result_text(ctx.dicts.get(name, key));
        });
    });
    r.add("kv.del", [ctx](Call& c) {
        c.params.reject_unknown({"name", "key"});
        KvTable::Change change;
        change.name = read_sync_name(c.params);
        change.key = read_key(c.params);
        ctx.dicts.change(std::move(change), c.responder);
    });
    r.add("kv.list", [ctx](Call& c) {
        c.params.reject_unknown({"name"});
        std::string name = read_sync_name(c.params);
        auto responder = c.responder;
        ctx.dicts.when_settled(name, responder,
                               [ctx, name, responder] { responder->result_text(ctx.dicts.list(name)); });
    });
    r.add("kv.cas", [ctx](Call& c) { kv_cas(ctx, c); });
    r.add("kv.watch", [ctx](Call& c) {
        const auto& p = c.params;
        p.reject_unknown({"name", "key", "current", "timeout"});
        std::string name = read_sync_name(p);
        std::optional<std::string> key;
        if (p.optional<std::string>("key")) {
            key = read_key(p);
        }
        ctx.dicts.watch(name, std::move(key), p.get_or<bool>("current", false),
                        read_seconds(p, "timeout", false), c.responder);
    });
}

}  // namespace mpctl::daemon
