#pragma once
// EnvBlocks: the exec-ready form (exec/spawner.hpp's EnvBlock) of each distinct task environment, built
// once and shared by every spawn that uses it: everything submitted from one shell has the same
// environment, and rebuilding thousands of "K=V" strings per spawn would cost more than the spawn. Keyed
// by the interned environment (tasks/environments.hpp), held weakly: a block goes with the last task that
// needed it. Loop thread only.

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <mpctl/daemon/exec/spawner.hpp>
#include <mpctl/proto/task_spec.hpp>

namespace mpctl::daemon {

class EnvBlocks {
  public:
    // DAEMON_ENV ("K=V"): the environment of tasks submitted without one.
    explicit EnvBlocks(std::vector<std::string> daemon_env) : daemon_env_(std::move(daemon_env)) {}

    // The block for ENV (null: the daemon's own).
    [[nodiscard]] std::shared_ptr<const EnvBlock> get(const std::shared_ptr<const proto::Environment>& env);

  private:
    std::vector<std::string> daemon_env_;
    std::shared_ptr<const EnvBlock> daemon_block_;
    struct Cached {
        std::weak_ptr<const proto::Environment> env;
        std::shared_ptr<const EnvBlock> block;
    };
    std::unordered_map<const proto::Environment*, Cached> blocks_;
};

}  // namespace mpctl::daemon
