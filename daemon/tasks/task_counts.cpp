#include <mpctl/daemon/tasks/task_counts.hpp>

namespace mpctl::daemon {

nlohmann::json TaskCounts::by_state_json() const {
    nlohmann::json counts = nlohmann::json::object();
    for (auto st : {proto::TaskState::pending, proto::TaskState::running, proto::TaskState::succeeded,
                    proto::TaskState::failed, proto::TaskState::cancelled}) {
        counts[std::string(proto::to_string(st))] = in_state(st);
    }
    return counts;
}

using proto::TaskState;

void TaskCounts::update(const std::string& pool, Mark& mark, TaskState state, bool durable) {
    if (mark.counted) {
        if (mark.state == state && mark.durable == durable) {
            return;
        }
        add(pool, mark.state, mark.durable, -1);
    }
    add(pool, state, durable, +1);
    mark = Mark{state, durable, true};
}

void TaskCounts::remove(const std::string& pool, Mark& mark) {
    if (mark.counted) {
        add(pool, mark.state, mark.durable, -1);
        mark.counted = false;
    }
}

void TaskCounts::add(const std::string& pool, TaskState state, bool durable, int delta) {
    auto step = [delta](size_t& n) {
        n = delta > 0 ? n + 1 : n - 1;
    };
    if (durable) {
        step(by_state_[static_cast<size_t>(state)]);
    }
    if (proto::is_finished(state)) {
        return;
    }
    PoolCounts& p = pools_[pool];
    step(!durable ? p.uncommitted : state == TaskState::running ? p.running : p.pending);
    if (p.pending == 0 && p.running == 0 && p.uncommitted == 0) {
        pools_.erase(pool);
    }
}

size_t TaskCounts::pending(const std::string& pool) const {
    auto it = pools_.find(pool);
    return it == pools_.end() ? 0 : it->second.pending;
}

size_t TaskCounts::unfinished(const std::string& pool) const {
    auto it = pools_.find(pool);
    return it == pools_.end() ? 0 : it->second.pending + it->second.running + it->second.uncommitted;
}

}  // namespace mpctl::daemon
