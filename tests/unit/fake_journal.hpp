#pragma once
// A ManagerJournal for the manager tables' unit tests (test_queue_table.cpp, test_kv_table.cpp): it records
// every write, in order, and holds each commit until the test ends it, ok (commit) or not (fail), oldest
// first as the real journal does. What committed is kept as a model of the journal's rows: queues' values
// by seq, dicts' entries and versions; a read_dict committed is filled from that model.

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/store/manager_rows.hpp>

namespace mpctl::test::manager {

using mpctl::daemon::ManagerWrite;

class FakeJournal final : public mpctl::daemon::ManagerJournal {
  public:
    using Kind = ManagerWrite::Kind;

    void write(std::vector<std::shared_ptr<const ManagerWrite>> writes, Done done) override {
        for (const auto& w : writes) {
            log.push_back(w);
        }
        pending_.push_back({std::move(writes), std::move(done)});
    }

    // Commits not ended yet.
    [[nodiscard]] size_t pending() const { return pending_.size(); }

    // Ends the oldest commit well: its writes join the model (reads are filled from it), then its completion
    // runs.
    void commit() {
        REQUIRE_FALSE(pending_.empty());
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        for (const auto& w : p.writes) {
            apply(*w);
        }
        p.done({});
    }

    // Ends the oldest commit in failure (a full disk): nothing of it joins the model.
    void fail(const std::string& why = "database or disk is full") {
        REQUIRE_FALSE(pending_.empty());
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        p.done(mpctl::common::plain_error(why));
    }

    // Commits until nothing is pending (completions may write more).
    void commit_all() {
        while (!pending_.empty()) {
            commit();
        }
    }

    // The kinds of every write so far, in order.
    [[nodiscard]] std::vector<Kind> kinds() const {
        std::vector<Kind> out;
        for (const auto& w : log) {
            out.push_back(w->kind);
        }
        return out;
    }
    [[nodiscard]] size_t count(Kind kind) const {
        return static_cast<size_t>(
            std::count_if(log.begin(), log.end(), [kind](const auto& w) { return w->kind == kind; }));
    }

    // The committed state: a durable queue's values by seq.
    struct QueueModel {
        int64_t maxsize = 0;
        int64_t created_at_ms = 0;
        std::map<int64_t, std::string> items;
    };
    struct EntryModel {
        std::string value;
        int64_t version = 0;
    };
    struct DictModel {
        int64_t version = 0;
        std::map<std::string, EntryModel> entries;
    };

    // The values of queue NAME as committed, by seq.
    [[nodiscard]] std::vector<std::pair<int64_t, std::string>> queue_items(const std::string& name) const {
        std::vector<std::pair<int64_t, std::string>> out;
        if (auto it = queues.find(name); it != queues.end()) {
            out.assign(it->second.items.begin(), it->second.items.end());
        }
        return out;
    }

    std::vector<std::shared_ptr<const ManagerWrite>> log;  // every write asked for, in order
    std::map<std::string, QueueModel> queues;
    std::map<std::string, DictModel> dicts;

  private:
    struct Pending {
        std::vector<std::shared_ptr<const ManagerWrite>> writes;
        Done done;
    };

    void apply(const ManagerWrite& w) {
        switch (w.kind) {
            case Kind::delete_queue:
                queues.erase(w.name);
                return;
            case Kind::insert_items: {
                auto [it, made] = queues.try_emplace(w.name);
                if (made) {
                    it->second.maxsize = w.maxsize;
                    it->second.created_at_ms = w.created_at_ms;
                }
                for (const auto& [seq, value] : w.items) {
                    it->second.items[seq] = value;
                }
                return;
            }
            case Kind::delete_items:
                if (auto it = queues.find(w.name); it != queues.end()) {
                    for (int64_t seq : w.seqs) {
                        it->second.items.erase(seq);
                    }
                }
                return;
            case Kind::kv_set:
            case Kind::kv_delete: {
                DictModel& d = dicts[w.name];
                if (w.kind == Kind::kv_set) {
                    d.entries[w.key] = EntryModel{w.value, w.version};
                } else {
                    d.entries.erase(w.key);
                }
                d.version = std::max(d.version, w.version);  // a delete's version outlives its key
                return;
            }
            case Kind::read_dict: {
                REQUIRE(w.read_into != nullptr);
                mpctl::daemon::DictRow row{w.name, 0, {}};
                if (auto it = dicts.find(w.name); it != dicts.end()) {
                    row.version = it->second.version;
                    for (const auto& [key, e] : it->second.entries) {
                        row.entries.push_back({key, e.value, e.version});
                    }
                }
                *w.read_into = std::move(row);
                return;
            }
            default:
                return;  // not the queues' or the dicts' (another table's rows)
        }
    }

    std::deque<Pending> pending_;
};

}  // namespace mpctl::test::manager
