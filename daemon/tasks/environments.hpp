#pragma once
// Environments: every distinct task environment once, shared by all the tasks that use it. A shell loop
// or a map submits the same environment thousands of times; it is kept in memory and journaled once, and
// tasks refer to it by id. Loop thread only.

#include <cstdint>
#include <memory>
#include <unordered_map>

#include <mpctl/proto/task_spec.hpp>

namespace mpctl::daemon {

class Environments {
  public:
    struct Entry {
        int64_t id = 0;
        std::shared_ptr<const proto::Environment> env;
    };

    // The entry equal to ENV, added if there is none (then IS_NEW is set and the caller journals it).
    Entry intern(const std::shared_ptr<const proto::Environment>& env, bool& is_new);

    // Start-up: an environment the journal holds.
    void restore(int64_t id, std::shared_ptr<const proto::Environment> env);
    void set_next_id(int64_t next) { next_id_ = std::max(next_id_, next); }

    // Forgets the entries that no task holds any more (their rows stay in the journal).
    size_t collect();

    [[nodiscard]] size_t size() const { return by_hash_.size(); }

  private:
    static size_t hash_of(const proto::Environment& env);

    std::unordered_multimap<size_t, Entry> by_hash_;
    int64_t next_id_ = 1;
    size_t interned_since_collect_ = 0;
};

}  // namespace mpctl::daemon
