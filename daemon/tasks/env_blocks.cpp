#include <mpctl/daemon/tasks/env_blocks.hpp>

namespace mpctl::daemon {

std::shared_ptr<const EnvBlock> EnvBlocks::get(const std::shared_ptr<const proto::Environment>& env) {
    if (!env) {
        if (!daemon_block_) {
            daemon_block_ = std::make_shared<const EnvBlock>(daemon_env_);
        }
        return daemon_block_;
    }
    // The pointer is the key: equal environments were interned into one object at submit. The weak_ptr
    // tells an entry whose environment is gone from a new one at the same address.
    auto it = blocks_.find(env.get());
    if (it != blocks_.end() && it->second.env.lock() == env) {
        return it->second.block;
    }
    if (blocks_.size() > 256) {
        std::erase_if(blocks_, [](const auto& item) { return item.second.env.expired(); });
    }
    std::vector<std::string> entries;
    entries.reserve(env->size());
    for (const auto& [k, v] : *env) {
        entries.push_back(k + "=" + v);
    }
    auto block = std::make_shared<const EnvBlock>(std::move(entries));
    blocks_[env.get()] = Cached{env, block};
    return block;
}

}  // namespace mpctl::daemon
