#include <mpctl/common/paths.hpp>
#include <mpctl/daemon/exec/output_files.hpp>

namespace mpctl::daemon {

namespace {
constexpr int64_t k_tasks_per_shard = 1000;
}

OutputLayout::OutputLayout(std::string state_dir) : root_(std::move(state_dir) + "/output") {}

std::string OutputLayout::shard_dir(int64_t task_id) const {
    return root_ + "/" + std::to_string(task_id / k_tasks_per_shard);
}

OutputPaths OutputLayout::paths(int64_t task_id) const {
    std::string base = shard_dir(task_id) + "/" + std::to_string(task_id);
    return {base + ".stdout", base + ".stderr"};
}

common::Result<void> OutputLayout::prepare(int64_t task_id) {
    int64_t shard = task_id / k_tasks_per_shard;
    if (prepared_shards_.contains(shard)) {
        return {};
    }
    if (auto r = common::make_dirs(shard_dir(task_id), 0700); !r) {
        return r;
    }
    prepared_shards_.insert(shard);
    return {};
}

}  // namespace mpctl::daemon
