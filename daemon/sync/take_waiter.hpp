#pragma once
// take_waiter: what every table of waits (LockTable, EventTable, BarrierTable) does when one wait ends before
// it is answered (its timeout, its lease, its client gone): find it by id in its entry's line and take it
// out.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

namespace mpctl::daemon {

// Takes the waiter with ID out of the line `LINE` of ENTRIES[KEY]: the waiter and whether it was first in
// line, or nullopt if it is not there (answered or taken already). Its timer and lease are the caller's.
template <class Map, class Line>
std::optional<std::pair<typename Line::value_type, bool>> take_waiter(Map& entries,
                                                                      const typename Map::key_type& key,
                                                                      uint64_t id,
                                                                      Line Map::mapped_type::*line) {
    auto it = entries.find(key);
    if (it == entries.end()) {
        return std::nullopt;
    }
    Line& waiters = it->second.*line;
    auto w = std::find_if(waiters.begin(), waiters.end(), [id](const auto& x) { return x.id == id; });
    if (w == waiters.end()) {
        return std::nullopt;
    }
    std::pair<typename Line::value_type, bool> taken{std::move(*w), w == waiters.begin()};
    waiters.erase(w);
    return taken;
}

}  // namespace mpctl::daemon
