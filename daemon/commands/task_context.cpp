#include <set>

#include <mpctl/daemon/commands/task_context.hpp>

namespace mpctl::daemon {

using proto::ErrorCode;
using proto::RequestError;

namespace {
constexpr size_t k_max_ids = 100000;
}  // namespace

const Task& known_task(const TaskContext& ctx, int64_t id) {
    const Task* t = ctx.scheduler.find_durable(id);
    if (t == nullptr) {
        throw RequestError(ErrorCode::unknown_id, "no task " + std::to_string(id), {{"id", id}});
    }
    return *t;
}

std::vector<int64_t> read_ids(const TaskContext& ctx, const proto::Params& p) {
    std::vector<int64_t> ids;
    if (p.has("ids")) {
        ids = p.required<std::vector<int64_t>>("ids");
    } else if (p.has("id")) {
        ids.push_back(p.required<int64_t>("id"));
    }
    if (ids.empty()) {
        proto::throw_invalid_params("params.ids: give at least one task id");
    }
    if (ids.size() > k_max_ids) {
        proto::throw_invalid_params("params.ids: at most " + std::to_string(k_max_ids) + " ids");
    }
    std::vector<int64_t> unique;
    std::set<int64_t> seen;
    std::vector<int64_t> unknown;
    for (int64_t id : ids) {
        if (!seen.insert(id).second) {
            continue;
        }
        if (ctx.scheduler.find_durable(id) == nullptr) {
            unknown.push_back(id);
        }
        unique.push_back(id);
    }
    if (!unknown.empty()) {
        std::string list;
        for (int64_t id : unknown) {
            list += (list.empty() ? "" : ", ") + std::to_string(id);
        }
        throw RequestError(ErrorCode::unknown_id, "no task " + list, {{"ids", unknown}});
    }
    return unique;
}

std::optional<std::chrono::milliseconds> read_timeout(const proto::Params& p) {
    auto t = p.optional<double>("timeout");
    if (!t) {
        return std::nullopt;
    }
    if (*t < 0 || *t > 365.0 * 86400) {
        proto::throw_invalid_params("params.timeout: must be between 0 and one year (in seconds)");
    }
    return std::chrono::milliseconds(static_cast<int64_t>(*t * 1000));
}

}  // namespace mpctl::daemon
