#include <algorithm>

#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/daemon/sync/event_table.hpp>
#include <mpctl/daemon/sync/take_waiter.hpp>
#include <mpctl/proto/errors.hpp>

namespace mpctl::daemon {

using nlohmann::json;

EventTable::~EventTable() {
    for (auto& [name, event] : events_) {
        for (auto& w : event.waiters) {
            timers_.cancel(w.timeout);
        }
    }
}

EventTable::Event& EventTable::event(const std::string& name) {
    auto it = events_.find(name);
    if (it != events_.end()) {
        return it->second;
    }
    if (events_.size() >= k_max_events) {
        throw proto::RequestError(proto::ErrorCode::busy,
                                  "the daemon has " + std::to_string(events_.size()) +
                                      " events set or waited for, its limit: clear some first",
                                  {{"limit", k_max_events}});
    }
    return events_[name];
}

json EventTable::set(const std::string& name) {
    Event& event = this->event(name);
    event.is_set = true;
    std::vector<Waiter> woken = std::move(event.waiters);
    event.waiters.clear();
    for (auto& w : woken) {
        timers_.cancel(w.timeout);
        w.responder->result({{"name", name}, {"set", true}});
    }
    return {{"name", name}, {"set", true}, {"woken", woken.size()}};
}

json EventTable::clear(const std::string& name) {
    if (auto it = events_.find(name); it != events_.end()) {
        it->second.is_set = false;
        forget_if_idle(name);
    }
    return {{"name", name}, {"set", false}};
}

void EventTable::wait(const std::string& name, std::optional<std::chrono::milliseconds> timeout,
                      const std::shared_ptr<Responder>& responder) {
    Event& event = this->event(name);
    if (event.is_set) {
        responder->result({{"name", name}, {"set", true}});
        return;
    }
    uint64_t id = next_id_++;
    Waiter w{id, responder, 0};
    if (timeout) {
        w.timeout = timers_.start(*timeout, [this, name, id] { withdraw(name, id, true); });
    }
    event.waiters.push_back(std::move(w));
    responder->on_disconnect([this, name, id] { withdraw(name, id, false); });
}

void EventTable::withdraw(const std::string& name, uint64_t id, bool timed_out) {
    auto taken = take_waiter(events_, name, id, &Event::waiters);
    if (!taken) {
        return;
    }
    Waiter& gone = taken->first;
    timers_.cancel(gone.timeout);
    if (timed_out) {
        gone.responder->error(proto::ErrorCode::timeout, "timed out waiting for event " + name + " to be set",
                              {{"name", name}});
    }
    forget_if_idle(name);
}

void EventTable::forget_if_idle(const std::string& name) {
    auto it = events_.find(name);
    if (it != events_.end() && !it->second.is_set && it->second.waiters.empty()) {
        events_.erase(it);
    }
}

json EventTable::list(const std::optional<std::string>& name) const {
    json out = json::array();
    auto entry = [&](const std::string& n, const Event* e) {
        out.push_back({{"name", n},
                       {"set", e != nullptr && e->is_set},
                       {"waiters", e != nullptr ? e->waiters.size() : size_t{0}}});
    };
    if (name) {
        auto it = events_.find(*name);
        entry(*name, it == events_.end() ? nullptr : &it->second);
        return out;
    }
    for (const auto& [n, e] : events_) {
        entry(n, &e);
    }
    return out;
}

}  // namespace mpctl::daemon
