#include <algorithm>
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

namespace {
void require_positive(int64_t id, const std::string& path) {
    if (id <= 0) {
        proto::throw_invalid_params(path + ": task ids are positive integers");
    }
}
}  // namespace

int64_t read_id(const proto::Params& p) {
    int64_t id = p.required<int64_t>("id");
    require_positive(id, "params.id");
    return id;
}

std::vector<int64_t> read_ids(const proto::Params& p) {
    std::vector<int64_t> ids;
    if (p.has("ids") && p.has("id")) {
        proto::throw_invalid_params("params: give id or ids, not both");
    }
    if (p.has("ids")) {
        ids = p.required<std::vector<int64_t>>("ids");
        for (size_t i = 0; i < ids.size(); ++i) {
            require_positive(ids[i], "params.ids[" + std::to_string(i) + "]");
        }
    } else if (p.has("id")) {
        ids.push_back(read_id(p));
    }
    if (ids.empty()) {
        proto::throw_invalid_params("params.ids: give at least one task id");
    }
    if (ids.size() > k_max_ids) {
        proto::throw_invalid_params("params.ids: at most " + std::to_string(k_max_ids) + " ids");
    }
    std::vector<int64_t> unique;
    std::set<int64_t> seen;
    for (int64_t id : ids) {
        if (seen.insert(id).second) {
            unique.push_back(id);
        }
    }
    return unique;
}

void require_known(const TaskContext& ctx, const std::vector<int64_t>& ids) {
    std::vector<int64_t> unknown;
    for (int64_t id : ids) {
        if (ctx.scheduler.find_durable(id) == nullptr) {
            unknown.push_back(id);
        }
    }
    if (!unknown.empty()) {
        std::string list;
        for (int64_t id : unknown) {
            list += (list.empty() ? "" : ", ") + std::to_string(id);
        }
        throw RequestError(ErrorCode::unknown_id, "no task " + list, {{"ids", unknown}});
    }
}

void after_ends_journaled(const TaskContext& ctx, const std::vector<int64_t>& ids,
                          const std::shared_ptr<Responder>& responder, std::function<void()> start) {
    if (std::none_of(ids.begin(), ids.end(), [&](int64_t id) { return known_task(ctx, id).finished(); })) {
        start();
        return;
    }
    ctx.futures.after_journal([ctx, ids, responder, start = std::move(start)] {
        if (!responder->session()) {
            return;
        }
        guarded(responder, [&] {
            require_known(ctx, ids);
            start();
        });
    });
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
