#pragma once
// Where a task's captured output lives: STATE_DIR/output/<id / 1000>/<id>.stdout|.stderr. Sharding keeps
// directories small for long-lived state dirs. Loop thread only.

#include <cstdint>
#include <string>
#include <unordered_set>

#include <mpctl/common/result.hpp>

namespace mpctl::daemon {

struct OutputPaths {
    std::string stdout_path;
    std::string stderr_path;
};

class OutputLayout {
  public:
    explicit OutputLayout(std::string state_dir);

    [[nodiscard]] OutputPaths paths(int64_t task_id) const;

    // Creates the task's shard directory if this process has not done so yet.
    [[nodiscard]] common::Result<void> prepare(int64_t task_id);

  private:
    [[nodiscard]] std::string shard_dir(int64_t task_id) const;

    std::string root_;
    std::unordered_set<int64_t> prepared_shards_;
};

}  // namespace mpctl::daemon
