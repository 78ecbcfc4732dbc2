// The shm family: shm.create, shm.unlink, shm.list, shm.info, shm.read, shm.write, and ShareableLists:
// shm.list_create, shm.list_get, shm.list_set
// (shm/segment_registry.hpp keeps the segments).

#include <mpctl/common/base64.hpp>
#include <mpctl/common/shm.hpp>
#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/shm_context.hpp>
#include <mpctl/daemon/commands/sync_params.hpp>
#include <mpctl/proto/list_values.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

std::string read_segment_name(const proto::Params& p) {
    auto name = common::shm::normalize_name(p.required<std::string>("name"));
    if (!name) {
        proto::throw_invalid_params("params.name: " + name.error().message());
    }
    return *name;
}

uint64_t read_offset(const proto::Params& p, const char* key) {
    auto v = p.optional<int64_t>(key);
    if (v && *v < 0) {
        proto::throw_invalid_params(std::string("params.") + key + ": must not be negative");
    }
    return static_cast<uint64_t>(v.value_or(0));
}

// params.mode: permission bits as octal text ("600", "0640"), at most 0777.
mode_t read_mode(const proto::Params& p) {
    std::string text = p.get_or<std::string>("mode", "600");
    if (text.empty() || text.size() > 4 || text.find_first_not_of("01234567") != std::string::npos ||
        std::stoul(text, nullptr, 8) > 0777) {
        proto::throw_invalid_params(
            "params.mode: expected octal permission bits such as \"600\" or \"0640\"");
    }
    return static_cast<mode_t>(std::stoul(text, nullptr, 8));
}

// What shm.create and shm.list_create share: the name, mode and lease (or persist).
SegmentRegistry::Create read_create(const Call& call) {
    const auto& p = call.params;
    SegmentRegistry::Create r;
    r.name = read_segment_name(p);
    r.mode = read_mode(p);
    bool persist = p.get_or<bool>("persist", false);
    LeaseSpec lease = read_lease(call);
    if (persist && (p.optional<std::string>("lease") || p.optional<double>("ttl"))) {
        proto::throw_invalid_params("params.persist: a persistent segment has no lease (no lease or ttl)");
    }
    if (!persist) {
        r.lease = lease;
    }
    r.session = call.responder->session();
    return r;
}

void shm_create(const ShmContext& ctx, Call& call) {
    call.params.reject_unknown({"name", "size", "mode", "pid", "lease", "ttl", "persist"});
    auto size = call.params.required<int64_t>("size");
    SegmentRegistry::Create r = read_create(call);
    if (size < 1) {
        proto::throw_invalid_params("params.size: must be 1 or more bytes");
    }
    r.size = static_cast<uint64_t>(size);
    ctx.segments.create(r, call.responder);
}

common::shm::ListValue read_list_value(const json& v, const std::string& where) {
    auto value = proto::list_value_from_json(v);
    if (!value) {
        proto::throw_invalid_params(where + ": " + value.error().message());
    }
    return *value;
}

void shm_list_create(const ShmContext& ctx, Call& call) {
    call.params.reject_unknown({"name", "values", "mode", "pid", "lease", "ttl", "persist"});
    json values = call.params.required<json>("values");
    if (!values.is_array()) {
        proto::throw_invalid_params("params.values: expected an array");
    }
    std::vector<common::shm::ListValue> items;
    for (size_t i = 0; i < values.size(); ++i) {
        items.push_back(read_list_value(values[i], "params.values[" + std::to_string(i) + "]"));
    }
    SegmentRegistry::Create r = read_create(call);
    r.content = common::shm::encode_list(items);
    r.size = r.content.size();
    r.items = items.size();
    ctx.segments.create(r, call.responder);
}

void shm_list_set(const ShmContext& ctx, Call& call) {
    call.params.reject_unknown({"name", "index", "value"});
    std::string name = read_segment_name(call.params);
    int64_t index = call.params.required<int64_t>("index");
    const json* given = call.params.present("value");  // null is the item None
    if (given == nullptr) {
        proto::throw_invalid_params("params.value: required");
    }
    auto value = read_list_value(*given, "params.value");
    call.responder->result(ctx.segments.list_set(name, index, value));
}

void shm_read(const ShmContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"name", "offset", "length"});
    std::string name = read_segment_name(p);
    uint64_t offset = read_offset(p, "offset");
    std::optional<uint64_t> length;
    if (p.optional<int64_t>("length")) {
        length = read_offset(p, "length");
    }
    call.responder->result(ctx.segments.read(name, offset, length));
}

void shm_write(const ShmContext& ctx, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"name", "offset", "data"});
    std::string name = read_segment_name(p);
    uint64_t offset = read_offset(p, "offset");
    auto data = common::base64_decode(p.required<std::string>("data"));
    if (!data) {
        proto::throw_invalid_params("params.data: not base64");
    }
    call.responder->result(ctx.segments.write(name, offset, *data));
}

}  // namespace

void register_shm_commands(Registry& r, const ShmContext& ctx) {
    r.add("shm.create", [ctx](Call& c) { shm_create(ctx, c); });
    r.add("shm.unlink", [ctx](Call& c) {
        c.params.reject_unknown({"name"});
        c.responder->result(ctx.segments.unlink(read_segment_name(c.params)));
    });
    r.add("shm.list", [ctx](Call& c) {
        c.params.reject_unknown({"all"});
        c.responder->result({{"segments", ctx.segments.list(c.params.get_or<bool>("all", false))}});
    });
    r.add("shm.info", [ctx](Call& c) {
        c.params.reject_unknown({"name"});
        c.responder->result(ctx.segments.info(read_segment_name(c.params)));
    });
    r.add("shm.read", [ctx](Call& c) { shm_read(ctx, c); });
    r.add("shm.list_create", [ctx](Call& c) { shm_list_create(ctx, c); });
    r.add("shm.list_get", [ctx](Call& c) {
        c.params.reject_unknown({"name", "index"});
        std::string name = read_segment_name(c.params);
        c.responder->result(ctx.segments.list_get(name, c.params.optional<int64_t>("index")));
    });
    r.add("shm.list_set", [ctx](Call& c) { shm_list_set(ctx, c); });
    r.add("shm.write", [ctx](Call& c) { shm_write(ctx, c); });
}

}  // namespace mpctl::daemon
