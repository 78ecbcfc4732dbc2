#pragma once
// Input-order output for `mpctl map`: finished tasks wait here until every earlier one has been printed.
// Only small records wait (a task id and the paths of its output files, or its JSON line); the output itself
// stays on disk until its turn.

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

namespace mpctl::cli::map {

template <class T>
class Reorder {
  public:
    // Task number SEQ (0, 1, 2... in input order) finished.
    void add(uint64_t seq, T value) { waiting_.emplace(seq, std::move(value)); }
    // The next one in input order, if it has finished.
    [[nodiscard]] std::optional<T> pop() {
        auto it = waiting_.find(next_);
        if (it == waiting_.end()) {
            return std::nullopt;
        }
        T value = std::move(it->second);
        waiting_.erase(it);
        ++next_;
        return value;
    }
    [[nodiscard]] uint64_t next() const { return next_; }
    [[nodiscard]] size_t waiting() const { return waiting_.size(); }

  private:
    uint64_t next_ = 0;
    std::map<uint64_t, T> waiting_;
};

}  // namespace mpctl::cli::map
