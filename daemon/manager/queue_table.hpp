#pragma once
// QueueTable: the named FIFO queues of `mpctl queue` (queue.* in PROTOCOL.md), queue.Queue for every
// process. Values are kept as the JSON text clients sent. A durable queue journals every change through
// the ManagerJournal and answers after the commit: a put's values become visible to gets only once
// committed, and a get's values leave the journal before they are answered. Gets and puts that cannot be
// served at once are parked (no polling) and served in arrival order; the values of a put or a get that is
// being committed hold their room in a bounded queue until the commit ends. Loop thread only.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <mpctl/daemon/manager/value_budget.hpp>
#include <mpctl/daemon/store/manager_rows.hpp>
#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::daemon {

class Responder;

class QueueTable {
  public:
    static constexpr size_t k_max_queues = 65536;

    QueueTable(ManagerJournal& journal, Timers& timers, ValueBudget& budget)
        : journal_(journal), timers_(timers), budget_(budget) {}
    ~QueueTable();
    QueueTable(const QueueTable&) = delete;
    QueueTable& operator=(const QueueTable&) = delete;

    // The durable queues the journal holds, at start.
    void restore(std::vector<QueueRow> rows);

    struct Put {
        std::string name;
        std::vector<std::string> values;  // JSON texts, 1 or more
        std::optional<int64_t> maxsize;   // on first use
        std::optional<bool> memory;       // on first use
        bool nonblock = false;
        std::optional<std::chrono::milliseconds> timeout;
    };
    // Answers RESPONDER {"name", "put", "length"} once the values are in (and committed), or an error.
    void put(Put r, const std::shared_ptr<Responder>& responder);

    struct Get {
        std::string name;
        size_t count = 1;
        bool nonblock = false;
        std::optional<std::chrono::milliseconds> timeout;
    };
    // Answers RESPONDER {"name", "values", "length"} once COUNT values are taken (and committed).
    void get(const Get& r, const std::shared_ptr<Responder>& responder);

    // The queue object (PROTOCOL.md, queue.info); throws unknown_id.
    [[nodiscard]] nlohmann::json info(const std::string& name) const;
    [[nodiscard]] nlohmann::json list() const;
    // Deletes NAME with its values; its waiters hear unknown_id. Answers {"name", "deleted"}.
    void remove(const std::string& name, const std::shared_ptr<Responder>& responder);

  private:
    struct Item {
        int64_t seq = 0;
        std::string value;
    };
    struct Getter {
        uint64_t id = 0;
        std::shared_ptr<Responder> responder;
        size_t count = 0;
        TimerId timer = 0;
    };
    struct Putter {
        uint64_t id = 0;
        std::shared_ptr<Responder> responder;
        std::vector<std::string> values;
        uint64_t bytes = 0;
        TimerId timer = 0;
    };
    struct Queue {
        std::string name;
        bool declared = false;  // put into (or journaled): else only waited on, and forgotten when idle
        bool durable = false;
        bool deleted = false;        // commits still running for it find it gone
        bool row_journaled = false;  // its row is in the journal: puts need not write it again
        int64_t maxsize = 0;         // 0: unbounded
        int64_t created_at_ms = 0;
        std::deque<Item> items;  // committed, visible to gets; by seq
        uint64_t bytes = 0;      // of items
        size_t in_flight = 0;    // values of puts and gets being committed: they hold their room
        std::deque<Getter> getters;
        std::deque<Putter> putters;
    };
    using QueuePtr = std::shared_ptr<Queue>;

    // NAME's queue, made (not declared) if there is room; throws busy past k_max_queues.
    QueuePtr find_or_make(const std::string& name);
    [[nodiscard]] static size_t room(const Queue& q);
    void accept(const QueuePtr& q, std::vector<std::string> values, uint64_t bytes,
                const std::shared_ptr<Responder>& responder);
    void take(const QueuePtr& q, size_t count, const std::shared_ptr<Responder>& responder);
    // Gives the head of VALUES to the gets waiting on a durable queue that holds nothing: delivered before
    // the put is answered, they need no journal (an answered put's values are delivered once either way).
    // How many were given; their bytes are taken off BYTES.
    size_t hand_over(const QueuePtr& q, const std::vector<std::string>& values, uint64_t& bytes);
    // Values of a get that were not delivered go back to the head of the queue.
    void put_back(const QueuePtr& q, std::vector<Item> items, uint64_t bytes, bool journal);
    void serve_getters(const QueuePtr& q);
    void serve_putters(const QueuePtr& q);
    void withdraw_getter(const QueuePtr& q, uint64_t id, bool timed_out);
    void withdraw_putter(const QueuePtr& q, uint64_t id, bool timed_out);
    void forget_if_idle(const QueuePtr& q);
    [[nodiscard]] static nlohmann::json describe(const Queue& q);

    ManagerJournal& journal_;
    Timers& timers_;
    ValueBudget& budget_;
    uint64_t next_waiter_ = 1;
    int64_t next_seq_ = 1;  // one sequence for every queue's values: the journal's rowids
    std::map<std::string, QueuePtr> queues_;
};

}  // namespace mpctl::daemon
