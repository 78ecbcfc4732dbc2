#pragma once
// ReadyQueue: a pool's tasks that are ready to start, highest priority first, then first come first served.
// A FIFO per priority of (sequence, id) pairs: 16 bytes a queued task where an ordered set of them took a
// 64-byte node, and a push or a pop in O(1) but for the lookup of its priority. A task taken out of the
// middle (a cancel) is only marked: the entry is skipped when it comes up, and the marks are swept when
// they outnumber the live entries. Each push takes a sequence number never used before (the scheduler's
// enqueue counter), which is what names an entry. Loop thread only.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <unordered_set>

namespace mpctl::daemon {

class ReadyQueue {
  public:
    // SEQ: greater than every sequence pushed before.
    void push(int priority, uint64_t seq, int64_t id);
    // Takes out the entry pushed with PRIORITY and SEQ (which must be queued).
    void erase(int priority, uint64_t seq);
    // The first task's id, taken out; nullopt if none.
    std::optional<int64_t> pop();
    // Calls FN with the ids of the first tasks, in order, while it returns true.
    void visit(const std::function<bool(int64_t id)>& fn) const;

    [[nodiscard]] size_t size() const { return size_; }
    [[nodiscard]] bool empty() const { return size_ == 0; }

  private:
    struct Entry {
        uint64_t seq;
        int64_t id;
    };
    void sweep();

    std::map<int, std::deque<Entry>, std::greater<>> by_priority_;  // highest first
    std::unordered_set<uint64_t> erased_;  // sequences of entries taken out but still in a FIFO
    size_t size_ = 0;
};

}  // namespace mpctl::daemon
