#pragma once
// BarrierTable: named barriers (`mpctl barrier`, barrier.* in PROTOCOL.md), threading.Barrier for every
// process: each `wait` blocks until PARTIES waiters have arrived, then all go on together, each told its
// arrival index (0 to PARTIES-1, as Barrier.wait returns). A waiter whose timeout runs out breaks the
// barrier for everyone waiting on it (Python's BrokenBarrierError): they are all answered with an error
// and the barrier starts afresh. A waiter whose client disconnects is withdrawn. Not journaled. Loop
// thread only.

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

class BarrierTable {
  public:
    // Barriers waited at at once; past it a new name is busy.
    static constexpr size_t k_max_barriers = 65536;

    explicit BarrierTable(Timers& timers) : timers_(timers) {}
    ~BarrierTable();
    BarrierTable(const BarrierTable&) = delete;
    BarrierTable& operator=(const BarrierTable&) = delete;

    // Answers RESPONDER {"name", "parties", "index"} once PARTIES have arrived; an error
    // if the barrier breaks first. Throws invalid_state if NAME is in use with other PARTIES.
    void wait(const std::string& name, int parties, std::optional<std::chrono::milliseconds> timeout,
              pid_t pid, const std::shared_ptr<Responder>& responder);
    // [{"name", "parties", "waiting": [pid, ...]}]
    [[nodiscard]] nlohmann::json list(const std::optional<std::string>& name) const;

  private:
    struct Waiter {
        uint64_t id = 0;
        pid_t pid = 0;
        std::shared_ptr<Responder> responder;
        TimerId timeout = 0;
    };
    struct Barrier {
        int parties = 0;
        std::vector<Waiter> waiting;
    };
    // Waiter ID's timeout ran out: the barrier breaks.
    void break_barrier(const std::string& name, uint64_t id);
    void withdraw(const std::string& name, uint64_t id);

    Timers& timers_;
    uint64_t next_id_ = 1;
    std::map<std::string, Barrier> barriers_;
};

}  // namespace mpctl::daemon
