#include <spdlog/spdlog.h>

#include <mpctl/daemon/sync/fencing_tokens.hpp>

namespace mpctl::daemon {

std::optional<int64_t> FencingTokens::take() {
    if (next_ < ceiling_) {
        int64_t token = next_++;
        // A quarter of the block left: raise the ceiling now, so that grants never wait for it.
        if (ceiling_ - next_ < k_block / 4) {
            reserve();
        }
        return token;
    }
    reserve();
    return std::nullopt;
}

void FencingTokens::reserve() {
    if (reserving_ || retry_ != 0) {
        return;
    }
    reserving_ = true;
    int64_t target = std::max(ceiling_, next_) + k_block;
    store_.raise_meta("next_lock_token", target, [this, target](const common::Result<void>& r) {
        reserving_ = false;
        if (!r) {
            // A full disk, say: grants that need a token wait (their own timeouts apply); try again soon.
            spdlog::error("journal: recording lock tokens up to {}: {}", target, r.error().message());
            retry_ = timers_.start(std::chrono::seconds(1), [this] {
                retry_ = 0;
                reserve();
            });
            return;
        }
        ceiling_ = std::max(ceiling_, target);
        ready_();
    });
}

}  // namespace mpctl::daemon
