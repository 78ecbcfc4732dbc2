#include <mpctl/daemon/tasks/future_table.hpp>

namespace mpctl::daemon {

FutureTable::WatchId FutureTable::watch(const std::vector<int64_t>& ids, OnFinished on_finished) {
    WatchId id = next_++;
    Watch w;
    w.on_finished = std::move(on_finished);
    w.tasks = ids;
    for (int64_t task : ids) {
        by_task_[task].push_back(id);
        ++w.remaining;
    }
    if (w.remaining > 0) {
        watches_.emplace(id, std::move(w));
    }
    return id;
}

void FutureTable::unwatch(WatchId id) {
    auto w = watches_.find(id);
    if (w == watches_.end()) {
        return;
    }
    for (int64_t task : w->second.tasks) {
        auto it = by_task_.find(task);
        if (it == by_task_.end()) {
            continue;
        }
        std::erase(it->second, id);
        if (it->second.empty()) {
            by_task_.erase(it);
        }
    }
    watches_.erase(w);
}

void FutureTable::task_finished(int64_t task_id) {
    auto it = by_task_.find(task_id);
    if (it == by_task_.end()) {
        return;
    }
    std::vector<WatchId> ids = std::move(it->second);
    by_task_.erase(it);
    for (WatchId id : ids) {
        auto w = watches_.find(id);
        if (w == watches_.end()) {
            continue;  // unwatched meanwhile
        }
        bool last = --w->second.remaining == 0;
        // Callbacks may unwatch or add watches, so move it out before calling when it is the last one.
        if (last) {
            OnFinished fn = std::move(w->second.on_finished);
            watches_.erase(w);
            fn(task_id);
        } else {
            OnFinished fn = w->second.on_finished;
            fn(task_id);
        }
    }
}

}  // namespace mpctl::daemon
