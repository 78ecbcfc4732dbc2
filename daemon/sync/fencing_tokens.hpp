#pragma once
// FencingTokens: the number every lock grant carries, larger than any grant before it, of any lock, in
// this state dir, across daemon restarts and crashes (a holder that stalled and lost its lease can be told
// apart from the one that holds the lock now by the token it presents). Journaling each grant would cost
// a commit per acquire; the journal instead records a ceiling (meta.next_lock_token), raised a block at a
// time ahead of use, and tokens are handed out below it. A restarted daemon starts at the ceiling, so
// tokens skip ahead after a restart but never go back. Loop thread only.

#include <cstdint>
#include <functional>
#include <optional>

#include <mpctl/daemon/store/store.hpp>
#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::daemon {

class FencingTokens {
  public:
    static constexpr int64_t k_block = 4096;

    // NEXT: the journal's meta.next_lock_token. READY runs when tokens that take() could not give are
    // there (the ceiling's commit is done).
    FencingTokens(Store& store, Timers& timers, int64_t next, std::function<void()> ready)
        : store_(store), timers_(timers), next_(next), ceiling_(next), ready_(std::move(ready)) {}
    ~FencingTokens() { timers_.cancel(retry_); }
    FencingTokens(const FencingTokens&) = delete;
    FencingTokens& operator=(const FencingTokens&) = delete;

    // The next token, once the journal's ceiling is above it; nullopt until then (READY says when).
    [[nodiscard]] std::optional<int64_t> take();

  private:
    void reserve();

    Store& store_;
    Timers& timers_;
    int64_t next_;
    int64_t ceiling_;  // committed: tokens below it may be handed out
    bool reserving_ = false;
    TimerId retry_ = 0;
    std::function<void()> ready_;
};

}  // namespace mpctl::daemon
