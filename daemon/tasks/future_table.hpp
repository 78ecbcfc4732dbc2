#pragma once
// FutureTable: who is waiting for which task to finish (task.wait, task.as_completed, result). The
// daemon tells it about every finished task; each watch gets a callback per watched task, in completion
// order. Loop thread only.

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

namespace mpctl::daemon {

class FutureTable {
  public:
    using WatchId = uint64_t;
    using OnFinished = std::function<void(int64_t task_id)>;

    // Calls ON_FINISHED once for each of IDS when it finishes (callers handle ids already finished).
    // The watch ends by itself after the last one, or by unwatch().
    WatchId watch(const std::vector<int64_t>& ids, OnFinished on_finished);
    void unwatch(WatchId id);

    void task_finished(int64_t task_id);

    [[nodiscard]] size_t watch_count() const { return watches_.size(); }

  private:
    struct Watch {
        std::vector<int64_t> tasks;
        size_t remaining = 0;
        OnFinished on_finished;
    };
    WatchId next_ = 1;
    std::unordered_map<WatchId, Watch> watches_;
    std::unordered_map<int64_t, std::vector<WatchId>> by_task_;
};

}  // namespace mpctl::daemon
