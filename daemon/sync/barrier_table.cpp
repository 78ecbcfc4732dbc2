#include <algorithm>

#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/daemon/sync/barrier_table.hpp>
#include <mpctl/daemon/sync/take_waiter.hpp>
#include <mpctl/proto/errors.hpp>

namespace mpctl::daemon {

using nlohmann::json;
using proto::ErrorCode;

BarrierTable::~BarrierTable() {
    for (auto& [name, barrier] : barriers_) {
        for (auto& w : barrier.waiting) {
            timers_.cancel(w.timeout);
        }
    }
}

void BarrierTable::wait(const std::string& name, int parties,
                        std::optional<std::chrono::milliseconds> timeout, pid_t pid,
                        const std::shared_ptr<Responder>& responder) {
    if (auto it = barriers_.find(name); it != barriers_.end() && it->second.parties != parties) {
        throw proto::RequestError(
            ErrorCode::invalid_state,
            "barrier " + name + " is in use with " + std::to_string(it->second.parties) + " parties",
            {{"name", name}, {"parties", it->second.parties}});
    }
    if (barriers_.size() >= k_max_barriers && !barriers_.contains(name)) {
        throw proto::RequestError(
            ErrorCode::busy,
            "the daemon has " + std::to_string(barriers_.size()) + " barriers waited at, its limit",
            {{"limit", k_max_barriers}});
    }
    Barrier& barrier = barriers_[name];
    barrier.parties = parties;
    uint64_t id = next_id_++;
    barrier.waiting.push_back(Waiter{id, pid, responder, 0});
    if (barrier.waiting.size() == static_cast<size_t>(parties)) {
        // The last one is in: everyone goes on, and the name is free for the next round.
        std::vector<Waiter> released = std::move(barrier.waiting);
        barriers_.erase(name);
        for (size_t i = 0; i < released.size(); ++i) {
            timers_.cancel(released[i].timeout);
            released[i].responder->result({{"name", name}, {"parties", parties}, {"index", i}});
        }
        return;
    }
    if (timeout) {
        barrier.waiting.back().timeout =
            timers_.start(*timeout, [this, name, id] { break_barrier(name, id); });
    }
    responder->on_disconnect([this, name, id] { withdraw(name, id); });
}

void BarrierTable::break_barrier(const std::string& name, uint64_t id) {
    auto it = barriers_.find(name);
    if (it == barriers_.end()) {
        return;
    }
    std::vector<Waiter> broken = std::move(it->second.waiting);
    int parties = it->second.parties;
    barriers_.erase(it);
    for (auto& w : broken) {
        timers_.cancel(w.timeout);
        if (w.id == id) {
            w.responder->error(ErrorCode::timeout, "timed out at barrier " + name, {{"name", name}});
        } else {
            w.responder->error(ErrorCode::invalid_state,
                               "barrier " + name + " broken: a waiter timed out with " +
                                   std::to_string(broken.size()) + " of " + std::to_string(parties) +
                                   " arrived",
                               {{"name", name}, {"broken", true}});
        }
    }
}

void BarrierTable::withdraw(const std::string& name, uint64_t id) {
    auto taken = take_waiter(barriers_, name, id, &Barrier::waiting);
    if (!taken) {
        return;
    }
    timers_.cancel(taken->first.timeout);
    if (auto it = barriers_.find(name); it != barriers_.end() && it->second.waiting.empty()) {
        barriers_.erase(it);
    }
}

json BarrierTable::list(const std::optional<std::string>& name) const {
    json out = json::array();
    for (const auto& [n, b] : barriers_) {
        if (name && n != *name) {
            continue;
        }
        json pids = json::array();
        for (const auto& w : b.waiting) {
            pids.push_back(w.pid);
        }
        out.push_back({{"name", n}, {"parties", b.parties}, {"waiting", pids}});
    }
    return out;
}

}  // namespace mpctl::daemon
