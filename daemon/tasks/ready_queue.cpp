#include <mpctl/daemon/tasks/ready_queue.hpp>

namespace mpctl::daemon {

void ReadyQueue::push(int priority, uint64_t seq, int64_t id) {
    by_priority_[priority].push_back(Entry{seq, id});
    ++size_;
}

void ReadyQueue::erase(int priority, uint64_t seq) {
    auto it = by_priority_.find(priority);
    if (it == by_priority_.end()) {
        return;
    }
    auto& fifo = it->second;
    // The cheap cases first: the entry at either end (a cancel of what was just queued, or of the next).
    if (!fifo.empty() && fifo.back().seq == seq) {
        fifo.pop_back();
    } else if (!fifo.empty() && fifo.front().seq == seq) {
        fifo.pop_front();
    } else {
        erased_.insert(seq);
        --size_;
        if (erased_.size() > 1024 && erased_.size() > size_) {
            sweep();
        }
        return;
    }
    --size_;
    if (fifo.empty()) {
        by_priority_.erase(it);
    }
}

std::optional<int64_t> ReadyQueue::pop() {
    while (!by_priority_.empty()) {
        auto first = by_priority_.begin();
        auto& fifo = first->second;
        while (!fifo.empty()) {
            Entry e = fifo.front();
            fifo.pop_front();
            if (!erased_.empty() && erased_.erase(e.seq) > 0) {
                continue;
            }
            --size_;
            if (fifo.empty()) {
                by_priority_.erase(first);
            }
            return e.id;
        }
        by_priority_.erase(first);
    }
    return std::nullopt;
}

void ReadyQueue::visit(const std::function<bool(int64_t id)>& fn) const {
    for (const auto& [priority, fifo] : by_priority_) {
        for (const Entry& e : fifo) {
            if (erased_.contains(e.seq)) {
                continue;
            }
            if (!fn(e.id)) {
                return;
            }
        }
    }
}

void ReadyQueue::sweep() {
    for (auto it = by_priority_.begin(); it != by_priority_.end();) {
        std::erase_if(it->second, [this](const Entry& e) { return erased_.contains(e.seq); });
        it = it->second.empty() ? by_priority_.erase(it) : std::next(it);
    }
    erased_.clear();
}

}  // namespace mpctl::daemon
