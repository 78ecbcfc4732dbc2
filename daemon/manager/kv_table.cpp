#include <spdlog/spdlog.h>

#include <mpctl/daemon/manager/kv_table.hpp>
#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

constexpr std::chrono::milliseconds k_resync_retry{100};

std::string entry_text(const std::string& key, const std::string& value, int64_t version) {
    return R"({"key":)" + proto::dump_json(key) + R"(,"value":)" + value + R"(,"version":)" +
           std::to_string(version) + "}";
}

}  // namespace

KvTable::~KvTable() {
    for (auto& [name, d] : dicts_) {
        for (auto& w : d.watchers) {
            timers_.cancel(w.timer);
        }
    }
}

void KvTable::restore(std::vector<DictRow> rows) {
    for (auto& row : rows) {
        Dict& d = dicts_[row.name];
        d.journaled = true;
        d.version = row.version;
        for (auto& e : row.entries) {
            d.bytes += e.key.size() + e.value.size();
            d.entries[e.key] = Entry{std::move(e.value), e.version};
        }
        budget_.restore(d.bytes);
    }
}

KvTable::Dict& KvTable::dict_or_make(const std::string& name) {
    if (auto it = dicts_.find(name); it != dicts_.end()) {
        return it->second;
    }
    if (dicts_.size() >= k_max_dicts) {
        throw proto::RequestError(proto::ErrorCode::busy,
                                  "the daemon has " + std::to_string(dicts_.size()) + " dicts, its limit",
                                  {{"limit", k_max_dicts}});
    }
    return dicts_[name];
}

void KvTable::when_settled(const std::string& name, const std::shared_ptr<Responder>& responder,
                           std::function<void()> fn) {
    auto it = dicts_.find(name);
    if (it != dicts_.end() && it->second.resyncing) {
        it->second.blocked.push_back([responder, fn = std::move(fn)] { guarded(responder, fn); });
        return;
    }
    fn();
}

void KvTable::change(Change c, const std::shared_ptr<Responder>& responder) {
    if (auto found = dicts_.find(c.name); found != dicts_.end() && found->second.resyncing) {
        when_settled(c.name, responder, [this, c, responder] { change(c, responder); });
        return;
    }
    Dict& d = dict_or_make(c.name);
    auto it = d.entries.find(c.key);
    if (c.compare) {
        bool holds = it == d.entries.end() ? !c.expect
                                           : c.expect && proto::parse_json_text(it->second.value) ==
                                                             proto::parse_json_text(*c.expect);
        if (!holds) {
            // Made before forget_if_idle, which may take the (empty) dict and its entries away.
            std::string where = "key " + c.key + " of dict " + c.name;
            auto refusal =
                it == d.entries.end()
                    ? proto::RequestError(proto::ErrorCode::busy, where + " does not exist",
                                          {{"name", c.name}, {"key", c.key}, {"absent", true}})
                    : proto::RequestError(proto::ErrorCode::busy,
                                          where + " holds " + it->second.value + " (version " +
                                              std::to_string(it->second.version) + ")" +
                                              (c.expect ? ", not " + *c.expect : ": it is not absent"),
                                          {{"name", c.name},
                                           {"key", c.key},
                                           {"value", proto::parse_json_text(it->second.value)},
                                           {"version", it->second.version}});
            forget_if_idle(c.name);
            throw refusal;
        }
    }
    if (!c.value && it == d.entries.end()) {
        forget_if_idle(c.name);
        throw proto::RequestError(proto::ErrorCode::unknown_id, "no key " + c.key + " in dict " + c.name,
                                  {{"name", c.name}, {"key", c.key}});
    }
    uint64_t old_bytes = it == d.entries.end() ? 0 : c.key.size() + it->second.value.size();
    uint64_t new_bytes = c.value ? c.key.size() + c.value->size() : 0;
    if (new_bytes > old_bytes) {
        try {
            budget_.take(new_bytes - old_bytes);
        } catch (...) {
            forget_if_idle(c.name);
            throw;
        }
    } else {
        budget_.give_back(old_bytes - new_bytes);
    }
    d.bytes = d.bytes - old_bytes + new_bytes;
    d.journaled = true;
    auto w = std::make_shared<ManagerWrite>();
    w->kind = c.value ? ManagerWrite::Kind::kv_set : ManagerWrite::Kind::kv_delete;
    w->name = c.name;
    w->key = c.key;
    w->version = ++d.version;
    if (c.value) {
        w->value = *c.value;
        d.entries[c.key] = Entry{std::move(*c.value), w->version};
    } else {
        d.entries.erase(it);
    }
    std::shared_ptr<const ManagerWrite> write = w;
    journal_.write({write}, [this, write, responder](common::Result<void> r) {
        if (!r) {
            responder->error(proto::ErrorCode::io_error,
                             "the journal could not record the change of key " + write->key + " of dict " +
                                 write->name + " (" + r.error().message() + "): nothing changed",
                             {{"name", write->name}, {"key", write->key}});
            resync(write->name);
            return;
        }
        responder->result({{"name", write->name}, {"key", write->key}, {"version", write->version}});
        committed(write->name, write);
    });
}

void KvTable::committed(const std::string& name, const std::shared_ptr<const ManagerWrite>& w) {
    auto it = dicts_.find(name);
    if (it == dicts_.end()) {
        return;
    }
    std::optional<std::string> value;
    if (w->kind == ManagerWrite::Kind::kv_set) {
        value = w->value;
    }
    std::string line;
    for (auto& watcher : it->second.watchers) {
        if ((watcher.key && *watcher.key != w->key) || w->version <= watcher.from_version) {
            continue;
        }
        if (line.empty()) {
            line = changed_line(name, w->key, value, w->version);
        }
        watcher.responder->notify_line(line);
    }
}

void KvTable::resync(const std::string& name) {
    auto it = dicts_.find(name);
    if (it == dicts_.end() || it->second.resyncing) {
        return;  // a read is on its way: it comes after every write queued before it
    }
    it->second.resyncing = true;
    read_back(name);
}

void KvTable::read_back(const std::string& name) {
    auto w = std::make_shared<ManagerWrite>();
    w->kind = ManagerWrite::Kind::read_dict;
    w->name = name;
    w->read_into = std::make_shared<DictRow>();
    w->read_into->version = -1;  // not read, until the journal reads it
    std::shared_ptr<const ManagerWrite> read = w;
    journal_.write({read}, [this, name, read](common::Result<void> r) {
        auto it = dicts_.find(name);
        if (it == dicts_.end()) {
            return;
        }
        Dict& d = it->second;
        (void)r;  // a read in a batch that failed was read again after the rollback (Store::apply)
        if (read->read_into->version < 0) {
            // Not read at all: again, a little later; what waits for the dict goes on waiting.
            timers_.start(k_resync_retry, [this, name] { read_back(name); });
            return;
        }
        budget_.give_back(d.bytes);
        d.entries.clear();
        d.bytes = 0;
        // Never back: a version a failed change took may have been read (or a watch started after it): it
        // is skipped rather than given to another change.
        d.version = std::max(d.version, read->read_into->version);
        for (auto& e : read->read_into->entries) {
            d.bytes += e.key.size() + e.value.size();
            d.entries[e.key] = Entry{std::move(e.value), e.version};
        }
        budget_.restore(d.bytes);
        d.resyncing = false;
        spdlog::warn("dict {}: read back from the journal after a failed commit (version {})", name,
                     d.version);
        auto blocked = std::exchange(d.blocked, {});
        for (auto& fn : blocked) {
            fn();
        }
    });
}

std::string KvTable::get(const std::string& name, const std::string& key) const {
    auto d = dicts_.find(name);
    if (d == dicts_.end()) {
        throw proto::RequestError(proto::ErrorCode::unknown_id, "no dict " + name, {{"name", name}});
    }
    auto e = d->second.entries.find(key);
    if (e == d->second.entries.end()) {
        throw proto::RequestError(proto::ErrorCode::unknown_id, "no key " + key + " in dict " + name,
                                  {{"name", name}, {"key", key}});
    }
    return R"({"name":)" + proto::dump_json(name) + "," +
           entry_text(key, e->second.value, e->second.version).substr(1);
}

std::string KvTable::list(const std::string& name) const {
    auto d = dicts_.find(name);
    std::string out = R"({"name":)" + proto::dump_json(name) + R"(,"version":)" +
                      std::to_string(d == dicts_.end() ? 0 : d->second.version) + R"(,"entries":[)";
    if (d != dicts_.end()) {
        bool first = true;
        for (const auto& [key, e] : d->second.entries) {
            out += first ? "" : ",";
            first = false;
            out += entry_text(key, e.value, e.version);
        }
    }
    return out + "]}";
}

std::string KvTable::changed_line(const std::string& name, const std::string& key,
                                  const std::optional<std::string>& value, int64_t version) {
    std::string params = R"({"name":)" + proto::dump_json(name) + R"(,"key":)" + proto::dump_json(key) +
                         (value ? R"(,"value":)" + *value : std::string(R"(,"deleted":true)")) +
                         R"(,"version":)" + std::to_string(version) + "}";
    return R"({"jsonrpc":"2.0","method":"kv.changed","params":)" + params + "}\n";
}

void KvTable::watch(const std::string& name, std::optional<std::string> key, bool current,
                    std::optional<std::chrono::milliseconds> timeout,
                    const std::shared_ptr<Responder>& responder) {
    if (auto found = dicts_.find(name); found != dicts_.end() && found->second.resyncing) {
        when_settled(name, responder, [this, name, key, current, timeout, responder] {
            watch(name, key, current, timeout, responder);
        });
        return;
    }
    Dict& d = dict_or_make(name);
    if (current) {
        for (const auto& [k, e] : d.entries) {
            if (!key || *key == k) {
                responder->notify_line(changed_line(name, k, e.value, e.version));
            }
        }
    }
    uint64_t id = next_watcher_++;
    Watcher w{id, std::move(key), d.version, responder, 0};
    if (timeout) {
        w.timer = timers_.start(*timeout, [this, name, id] { withdraw(name, id, true); });
    }
    d.watchers.push_back(std::move(w));
    responder->on_disconnect([this, name, id] { withdraw(name, id, false); });
}

void KvTable::withdraw(const std::string& name, uint64_t id, bool timed_out) {
    auto it = dicts_.find(name);
    if (it == dicts_.end()) {
        return;
    }
    auto& watchers = it->second.watchers;
    auto w = std::find_if(watchers.begin(), watchers.end(), [id](const Watcher& x) { return x.id == id; });
    if (w == watchers.end()) {
        return;
    }
    Watcher gone = std::move(*w);
    watchers.erase(w);
    timers_.cancel(gone.timer);
    if (timed_out) {
        gone.responder->error(proto::ErrorCode::timeout,
                              "kv watch of dict " + name + " ended: its timeout ran out",
                              {{"name", name}, {"version", it->second.version}});
    }
    forget_if_idle(name);
}

void KvTable::forget_if_idle(const std::string& name) {
    auto it = dicts_.find(name);
    if (it != dicts_.end() && !it->second.journaled && it->second.watchers.empty() &&
        it->second.entries.empty()) {
        dicts_.erase(it);
    }
}

}  // namespace mpctl::daemon
