#pragma once
// EventTable: named events (`mpctl event`, event.* in PROTOCOL.md), threading.Event for every process: set,
// clear, and wait until set. Waiters are parked in the daemon (no polling) and withdrawn when their client
// disconnects. An event that is clear with nobody waiting is forgotten; events are not journaled (a
// restarted daemon starts with every event clear). Loop thread only.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::daemon {

class Responder;

class EventTable {
  public:
    // Events set or waited for at once (a client must not fill the daemon's memory with names): past it,
    // set and wait of a new name are busy.
    static constexpr size_t k_max_events = 65536;

    explicit EventTable(Timers& timers) : timers_(timers) {}
    ~EventTable();
    EventTable(const EventTable&) = delete;
    EventTable& operator=(const EventTable&) = delete;

    // Sets NAME and wakes everyone waiting for it: {"name", "set": true, "woken": N}.
    nlohmann::json set(const std::string& name);
    // {"name", "set": false}
    nlohmann::json clear(const std::string& name);
    // Answers RESPONDER {"name", "set": true} once NAME is set (at once if it is), or a timeout error.
    void wait(const std::string& name, std::optional<std::chrono::milliseconds> timeout,
              const std::shared_ptr<Responder>& responder);
    // [{"name", "set", "waiters"}] (NAME: that one only, listed even if unknown: clear, nobody waiting).
    [[nodiscard]] nlohmann::json list(const std::optional<std::string>& name) const;

  private:
    struct Waiter {
        uint64_t id = 0;
        std::shared_ptr<Responder> responder;
        TimerId timeout = 0;
    };
    struct Event {
        bool is_set = false;
        std::vector<Waiter> waiters;
    };
    // NAME's event, made if there is room (throws busy otherwise).
    Event& event(const std::string& name);
    void withdraw(const std::string& name, uint64_t id, bool timed_out);
    void forget_if_idle(const std::string& name);

    Timers& timers_;
    uint64_t next_id_ = 1;
    std::map<std::string, Event> events_;
};

}  // namespace mpctl::daemon
