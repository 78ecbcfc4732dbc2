#pragma once
// TaskFilter: which tasks task.list lists and task.clean removes: states, labels (key=value, or a key
// with any value), pool and name, read from the params both take.

#include <map>
#include <optional>
#include <set>
#include <string>

#include <mpctl/daemon/tasks/task.hpp>
#include <mpctl/proto/params.hpp>

namespace mpctl::daemon {

struct TaskFilter {
    std::set<TaskState> states;
    std::map<std::string, std::optional<std::string>> labels;  // key -> value, or any value
    std::optional<std::string> pool;
    std::optional<std::string> name;

    [[nodiscard]] bool matches(const Task& t) const {
        if (!t.durable || (!states.empty() && !states.contains(t.state)) ||
            (pool && t.spec.pool() != *pool) || (name && t.spec.name() != *name)) {
            return false;
        }
        for (const auto& [k, v] : labels) {
            auto it = t.spec.labels().find(k);
            if (it == t.spec.labels().end() || (v && it->second != *v)) {
                return false;
            }
        }
        return true;
    }
};

// params.state (a state or an array of them), params.label and params.labels ("k=v" or "k"), params.pool,
// params.name; throws invalid_params.
[[nodiscard]] TaskFilter read_task_filter(const proto::Params& p);

}  // namespace mpctl::daemon
