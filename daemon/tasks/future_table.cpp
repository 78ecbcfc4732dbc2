#include <mpctl/daemon/tasks/future_table.hpp>

namespace mpctl::daemon {

FutureTable::WatchId FutureTable::watch(const std::vector<int64_t>& ids, OnEvent on_finished,
                                        OnEvent on_started) {
    WatchId id = next_++;
    Watch w;
    w.on_finished = std::move(on_finished);
    w.on_started = std::move(on_started);
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

void FutureTable::task_changed(const Task& task) {
    if (task.finished()) {
        finished(task);
    } else if (task.state == TaskState::running) {
        started(task);
    }
}

void FutureTable::started(const Task& task) {
    auto it = by_task_.find(task.id);
    if (it == by_task_.end()) {
        return;
    }
    // A copy: callbacks may add or remove watches of this task.
    std::vector<WatchId> ids = it->second;
    for (WatchId id : ids) {
        auto w = watches_.find(id);
        if (w != watches_.end() && w->second.on_started) {
            OnEvent fn = w->second.on_started;
            fn(task);
        }
    }
}

void FutureTable::finished(const Task& task) {
    auto it = by_task_.find(task.id);
    if (it == by_task_.end()) {
        return;
    }
    std::vector<WatchId> ids = std::move(it->second);
    by_task_.erase(it);
    if (!barrier_) {
        deliver(ids, task);
        return;
    }
    // A copy: by the commit the task may have been forgotten (task.remove), and it never changes again.
    barrier_([this, ids = std::move(ids), done = std::make_shared<const Task>(task)] { deliver(ids, *done); },
             true);
}

void FutureTable::deliver(const std::vector<WatchId>& ids, const Task& task) {
    for (WatchId id : ids) {
        auto w = watches_.find(id);
        if (w == watches_.end()) {
            continue;  // unwatched meanwhile
        }
        bool last = --w->second.remaining == 0;
        // Callbacks may unwatch or add watches, so move it out before calling when it is the last one.
        if (last) {
            OnEvent fn = std::move(w->second.on_finished);
            watches_.erase(w);
            fn(task);
        } else {
            OnEvent fn = w->second.on_finished;
            fn(task);
        }
    }
}

}  // namespace mpctl::daemon
