#pragma once
// ValueBudget: the bytes of values the manager holds (queues' and dicts' values, dicts' keys), all tables
// together, against `manager_max_bytes`: a client must not fill the daemon's memory. Loop thread only.

#include <cstdint>
#include <string>

#include <mpctl/proto/errors.hpp>

namespace mpctl::daemon {

class ValueBudget {
  public:
    explicit ValueBudget(uint64_t max_bytes) : max_(max_bytes) {}

    // Counts N more bytes, or throws busy (and counts nothing) when they would pass the limit.
    void take(uint64_t n) {
        if (n > max_ || used_ > max_ - n) {
            throw proto::RequestError(
                proto::ErrorCode::busy,
                "the daemon holds " + std::to_string(used_) + " bytes of queue and dict values, and " +
                    std::to_string(n) +
                    " more would pass its limit (manager_max_bytes): take or delete some first",
                {{"limit", max_}});
        }
        used_ += n;
    }
    // Counts N bytes held already (the journal's, at start): never refused.
    void restore(uint64_t n) { used_ += n; }
    void give_back(uint64_t n) { used_ = n > used_ ? 0 : used_ - n; }
    [[nodiscard]] uint64_t used() const { return used_; }

  private:
    uint64_t max_;
    uint64_t used_ = 0;
};

}  // namespace mpctl::daemon
