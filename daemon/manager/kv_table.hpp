#pragma once
// KvTable: the named dicts of `mpctl kv` (kv.* in PROTOCOL.md), Manager().dict() for every process, with
// what it lacks: versions, compare-and-set and watches. Every dict is journaled; a change is made in memory
// at once (so that the next cas sees it), journaled, and answered and streamed to watchers after its
// commit, in version order. A commit that fails (a full disk) is answered io_error, and the dict is read
// back from the journal before it serves anything else. What read the dict between the change and its
// failed commit did see it: a cas that passed on it and committed in a later group stands.
// Loop thread only.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
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

class KvTable {
  public:
    static constexpr size_t k_max_dicts = 65536;

    KvTable(ManagerJournal& journal, Timers& timers, ValueBudget& budget)
        : journal_(journal), timers_(timers), budget_(budget) {}
    ~KvTable();
    KvTable(const KvTable&) = delete;
    KvTable& operator=(const KvTable&) = delete;

    void restore(std::vector<DictRow> rows);

    // A change: VALUE (JSON text) set, or the key deleted when nullopt. EXPECT, for a compare-and-set: what
    // the key must hold (JSON text; nullopt: the key must be absent). Answers {"name", "key", "version"}.
    struct Change {
        std::string name;
        std::string key;
        std::optional<std::string> value;
        bool compare = false;
        std::optional<std::string> expect;
    };
    void change(Change c, const std::shared_ptr<Responder>& responder);

    // Runs FN now, or once dict NAME has been read back from the journal after a failed commit (what FN
    // throws goes to RESPONDER): nothing may read a change that was answered io_error.
    void when_settled(const std::string& name, const std::shared_ptr<Responder>& responder,
                      std::function<void()> fn);

    // {"name", "key", "value", "version"} as JSON text; throws unknown_id.
    [[nodiscard]] std::string get(const std::string& name, const std::string& key) const;
    // {"name", "version", "entries": [...]} as JSON text.
    [[nodiscard]] std::string list(const std::string& name) const;
    // Streams kv.changed notifications to RESPONDER until TIMEOUT (then a timeout error) or its client
    // leaves.
    void watch(const std::string& name, std::optional<std::string> key, bool current,
               std::optional<std::chrono::milliseconds> timeout, const std::shared_ptr<Responder>& responder);

  private:
    struct Entry {
        std::string value;
        int64_t version = 0;
    };
    struct Watcher {
        uint64_t id = 0;
        std::optional<std::string> key;
        int64_t from_version = 0;  // changes up to it were before the watch (or sent as current)
        std::shared_ptr<Responder> responder;
        TimerId timer = 0;
    };
    struct Dict {
        std::map<std::string, Entry> entries;
        int64_t version = 0;
        uint64_t bytes = 0;      // keys and values, counted in the budget
        bool journaled = false;  // written at least once (else a watch's, forgotten when idle)
        bool resyncing = false;  // a commit failed: being read back; requests wait in `blocked`
        std::deque<std::function<void()>> blocked;
        std::vector<Watcher> watchers;
    };

    Dict& dict_or_make(const std::string& name);
    void committed(const std::string& name, const std::shared_ptr<const ManagerWrite>& w);
    void resync(const std::string& name);
    void read_back(const std::string& name);
    void withdraw(const std::string& name, uint64_t id, bool timed_out);
    void forget_if_idle(const std::string& name);
    [[nodiscard]] static std::string changed_line(const std::string& name, const std::string& key,
                                                  const std::optional<std::string>& value, int64_t version);

    ManagerJournal& journal_;
    Timers& timers_;
    ValueBudget& budget_;
    uint64_t next_watcher_ = 1;
    std::map<std::string, Dict> dicts_;
};

}  // namespace mpctl::daemon
