#pragma once
// TaskCounts: how many tasks are in each state, overall and per pool, kept as each task changes, so that
// pool.list, daemon.status and the drop of an idle pool never walk the task table (with a million queued
// tasks a walk takes a tenth of a second).
//
// Overall it counts durable tasks (the ones clients can see) by state. Per pool it counts only what is
// unfinished: durable pending and running tasks, and tasks whose submit is still being committed (a pool
// is not idle while one is). A pool's entry goes when all three are zero, so the names of pools that
// came and went (a map's) are not kept for the daemon's life. Loop thread only.

#include <array>
#include <cstddef>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include <mpctl/proto/task_status.hpp>

namespace mpctl::daemon {

class TaskCounts {
  public:
    // What a task is counted as; each task keeps its own, so that a change moves it from the right counts.
    struct Mark {
        proto::TaskState state = proto::TaskState::pending;
        bool durable = false;
        bool counted = false;
    };

    // A task of POOL is now in STATE (DURABLE or not); MARK says what it was counted as, and is updated.
    void update(const std::string& pool, Mark& mark, proto::TaskState state, bool durable);
    // The task is forgotten (a submit that could not be committed).
    void remove(const std::string& pool, Mark& mark);

    // Durable tasks in STATE, in every pool.
    [[nodiscard]] size_t in_state(proto::TaskState state) const {
        return by_state_[static_cast<size_t>(state)];
    }
    // Durable tasks by state, as daemon.status shows them: {"pending": N, "running": N, ...}.
    [[nodiscard]] nlohmann::json by_state_json() const;
    // Durable pending tasks of POOL (queued, or waiting on dependencies or a retry delay).
    [[nodiscard]] size_t pending(const std::string& pool) const;
    // Unfinished tasks of POOL, committed or not.
    [[nodiscard]] size_t unfinished(const std::string& pool) const;

  private:
    struct PoolCounts {
        size_t pending = 0;
        size_t running = 0;
        size_t uncommitted = 0;
    };
    void add(const std::string& pool, proto::TaskState state, bool durable, int delta);

    std::array<size_t, 5> by_state_{};
    std::unordered_map<std::string, PoolCounts> pools_;
};

}  // namespace mpctl::daemon
