#include <algorithm>
#include <limits>

#include <spdlog/spdlog.h>

#include <mpctl/common/time.hpp>
#include <mpctl/daemon/manager/queue_table.hpp>
#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

uint64_t bytes_of(const std::vector<std::string>& values) {
    uint64_t n = 0;
    for (const auto& v : values) {
        n += v.size();
    }
    return n;
}

// {"name": NAME, "values": [the texts], "length": LENGTH}, the values written as they came.
std::string values_result(const std::string& name, const std::vector<std::string>& values, size_t length) {
    std::string out = R"({"name":)" + proto::dump_json(name) + R"(,"values":[)";
    for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        out += values[i];
    }
    out += R"(],"length":)" + std::to_string(length) + "}";
    return out;
}

std::string io_failure(const common::Error& e, const std::string& what) {
    return "the journal could not record " + what + " (" + e.message() + ")";
}

}  // namespace

QueueTable::~QueueTable() {
    for (auto& [name, q] : queues_) {
        for (auto& g : q->getters) {
            timers_.cancel(g.timer);
        }
        for (auto& p : q->putters) {
            timers_.cancel(p.timer);
        }
    }
}

void QueueTable::restore(std::vector<QueueRow> rows) {
    for (auto& row : rows) {
        auto q = std::make_shared<Queue>();
        q->name = row.name;
        q->declared = true;
        q->durable = true;
        q->row_journaled = true;
        q->maxsize = row.maxsize;
        q->created_at_ms = row.created_at_ms;
        for (auto& [seq, value] : row.items) {
            q->bytes += value.size();
            next_seq_ = std::max(next_seq_, seq + 1);
            q->items.push_back({seq, std::move(value)});
        }
        budget_.restore(q->bytes);
        queues_[row.name] = std::move(q);
    }
}

QueueTable::QueuePtr QueueTable::find_or_make(const std::string& name) {
    if (auto it = queues_.find(name); it != queues_.end()) {
        return it->second;
    }
    if (queues_.size() >= k_max_queues) {
        throw proto::RequestError(
            proto::ErrorCode::busy,
            "the daemon has " + std::to_string(queues_.size()) + " queues, its limit: delete some first",
            {{"limit", k_max_queues}});
    }
    auto q = std::make_shared<Queue>();
    q->name = name;
    queues_[name] = q;
    return q;
}

size_t QueueTable::room(const Queue& q) {
    if (q.maxsize == 0) {
        return std::numeric_limits<size_t>::max();
    }
    size_t held = q.items.size() + q.in_flight;
    auto max = static_cast<size_t>(q.maxsize);
    return held >= max ? 0 : max - held;
}

void QueueTable::put(Put r, const std::shared_ptr<Responder>& responder) {
    QueuePtr q = find_or_make(r.name);
    if (q->declared) {
        bool memory = !q->durable;
        if ((r.maxsize && *r.maxsize != q->maxsize) || (r.memory && *r.memory != memory)) {
            forget_if_idle(q);
            throw proto::RequestError(
                proto::ErrorCode::invalid_state,
                "queue " + r.name + " exists with maxsize " + std::to_string(q->maxsize) + " and " +
                    (memory ? "memory: true" : "memory: false") + "; those are set by its first put only",
                {{"name", r.name}, {"maxsize", q->maxsize}, {"memory", memory}});
        }
    } else {
        // Declared by the put that is accepted first; a put that waits has nothing to wait for here (an
        // undeclared queue holds nothing), so this one is that put.
        q->maxsize = r.maxsize.value_or(0);
        q->durable = !r.memory.value_or(false);
    }
    if (q->maxsize > 0 && r.values.size() > static_cast<size_t>(q->maxsize)) {
        forget_if_idle(q);
        proto::throw_invalid_params("params.values: " + std::to_string(r.values.size()) +
                                    " values can never fit queue " + r.name + " of maxsize " +
                                    std::to_string(q->maxsize));
    }
    uint64_t bytes = bytes_of(r.values);
    try {
        budget_.take(bytes);
    } catch (...) {
        forget_if_idle(q);
        throw;
    }
    if (q->putters.empty() && room(*q) >= r.values.size()) {
        accept(q, std::move(r.values), bytes, responder);
        return;
    }
    if (r.nonblock) {
        budget_.give_back(bytes);
        throw proto::RequestError(proto::ErrorCode::busy,
                                  "queue " + r.name + " is full (" + std::to_string(q->items.size()) +
                                      " of " + std::to_string(q->maxsize) + " values" +
                                      (q->putters.empty() ? "" : ", and other puts wait") + ")",
                                  {{"name", r.name}, {"length", q->items.size()}, {"maxsize", q->maxsize}});
    }
    uint64_t id = next_waiter_++;
    Putter p{id, responder, std::move(r.values), bytes, 0};
    if (r.timeout) {
        p.timer = timers_.start(*r.timeout, [this, q, id] { withdraw_putter(q, id, true); });
    }
    q->putters.push_back(std::move(p));
    responder->on_disconnect([this, q, id] { withdraw_putter(q, id, false); });
}

void QueueTable::accept(const QueuePtr& q, std::vector<std::string> values, uint64_t bytes,
                        const std::shared_ptr<Responder>& responder) {
    if (!q->declared) {
        q->declared = true;
        q->created_at_ms = common::now_unix_ms();
    }
    size_t n = values.size();
    if (!q->durable) {
        for (auto& v : values) {
            q->items.push_back({next_seq_++, std::move(v)});
        }
        q->bytes += bytes;
        responder->result({{"name", q->name}, {"put", n}, {"length", q->items.size()}});
        serve_getters(q);
        return;
    }
    size_t handed = hand_over(q, values, bytes);
    if (handed == n) {
        responder->result({{"name", q->name}, {"put", n}, {"length", 0}});
        return;
    }
    auto w = std::make_shared<ManagerWrite>();
    w->kind = ManagerWrite::Kind::insert_items;
    w->name = q->name;
    w->maxsize = q->maxsize;
    w->created_at_ms = q->created_at_ms;
    w->queue_row = !q->row_journaled;
    w->items.reserve(n - handed);
    for (size_t i = handed; i < n; ++i) {
        w->items.emplace_back(next_seq_++, std::move(values[i]));
    }
    q->in_flight += n - handed;
    std::shared_ptr<const ManagerWrite> write = w;
    journal_.write({write}, [this, q, write, bytes, n, responder](common::Result<void> r) {
        q->in_flight -= write->items.size();
        if (!r) {
            budget_.give_back(bytes);
            responder->error(proto::ErrorCode::io_error,
                             io_failure(r.error(), "the put") + ": nothing was put into queue " + q->name);
            serve_putters(q);
            return;
        }
        if (q->deleted) {
            // Deleted after this put: its values went with the queue.
            budget_.give_back(bytes);
            responder->result({{"name", q->name}, {"put", n}, {"length", 0}});
            return;
        }
        q->row_journaled = true;
        // Commits end in the order they were asked for, so seqs stay in order at the tail.
        for (const auto& [seq, value] : write->items) {
            q->items.push_back({seq, value});
        }
        q->bytes += bytes;
        responder->result({{"name", q->name}, {"put", n}, {"length", q->items.size()}});
        serve_getters(q);
    });
}

size_t QueueTable::hand_over(const QueuePtr& q, const std::vector<std::string>& values, uint64_t& bytes) {
    // Only onto an empty queue with nothing being committed: a value handed over must be the next in line.
    size_t handed = 0;
    while (q->items.empty() && q->in_flight == 0 && !q->getters.empty() &&
           q->getters.front().count <= values.size() - handed) {
        Getter g = std::move(q->getters.front());
        q->getters.pop_front();
        timers_.cancel(g.timer);
        if (!g.responder->connected()) {
            continue;  // gone since it parked: it takes nothing
        }
        std::vector<std::string> out(values.begin() + static_cast<ptrdiff_t>(handed),
                                     values.begin() + static_cast<ptrdiff_t>(handed + g.count));
        uint64_t given = bytes_of(out);
        budget_.give_back(given);
        bytes -= given;
        g.responder->result_text(values_result(q->name, out, 0));
        handed += g.count;
    }
    return handed;
}

void QueueTable::get(const Get& r, const std::shared_ptr<Responder>& responder) {
    auto it = queues_.find(r.name);
    if (r.nonblock) {
        if (it == queues_.end() || !it->second->declared) {
            throw proto::RequestError(proto::ErrorCode::busy,
                                      "queue " + r.name + " is empty: nothing was ever put into it",
                                      {{"name", r.name}, {"length", 0}});
        }
        const Queue& q = *it->second;
        if (!q.getters.empty() || q.items.size() < r.count) {
            throw proto::RequestError(
                proto::ErrorCode::busy,
                "queue " + r.name + " holds " + std::to_string(q.items.size()) + " values" +
                    (q.getters.empty()
                         ? ", fewer than " + std::to_string(r.count)
                         : ", and " + std::to_string(q.getters.size()) + " gets wait before this one"),
                {{"name", r.name}, {"length", q.items.size()}});
        }
    }
    QueuePtr q = find_or_make(r.name);
    if (q->getters.empty() && q->items.size() >= r.count) {
        take(q, r.count, responder);
        return;
    }
    uint64_t id = next_waiter_++;
    Getter g{id, responder, r.count, 0};
    if (r.timeout) {
        g.timer = timers_.start(*r.timeout, [this, q, id] { withdraw_getter(q, id, true); });
    }
    q->getters.push_back(std::move(g));
    responder->on_disconnect([this, q, id] { withdraw_getter(q, id, false); });
}

void QueueTable::take(const QueuePtr& q, size_t count, const std::shared_ptr<Responder>& responder) {
    std::vector<Item> taken;
    taken.reserve(count);
    uint64_t bytes = 0;
    for (size_t i = 0; i < count; ++i) {
        bytes += q->items.front().value.size();
        taken.push_back(std::move(q->items.front()));
        q->items.pop_front();
    }
    q->bytes -= bytes;
    auto answer = [q, bytes, this](const std::shared_ptr<Responder>& to, std::vector<Item>& items) {
        std::vector<std::string> values;
        values.reserve(items.size());
        for (auto& item : items) {
            values.push_back(std::move(item.value));
        }
        budget_.give_back(bytes);
        to->result_text(values_result(q->name, values, q->items.size()));
    };
    if (!q->durable) {
        answer(responder, taken);
        serve_putters(q);
        return;
    }
    auto w = std::make_shared<ManagerWrite>();
    w->kind = ManagerWrite::Kind::delete_items;
    w->name = q->name;
    w->seqs.reserve(count);
    for (const auto& item : taken) {
        w->seqs.push_back(item.seq);
    }
    q->in_flight += count;
    auto held = std::make_shared<std::vector<Item>>(std::move(taken));
    journal_.write({std::move(w)}, [this, q, held, bytes, count, responder, answer](common::Result<void> r) {
        q->in_flight -= count;
        if (!r) {
            put_back(q, std::move(*held), bytes, false);
            responder->error(proto::ErrorCode::io_error,
                             io_failure(r.error(), "the get") + ": its values are still in queue " + q->name);
            return;
        }
        if (!responder->connected()) {
            // Nobody to deliver to: the values were taken from the journal, so they go back into it.
            put_back(q, std::move(*held), bytes, true);
            return;
        }
        answer(responder, *held);
        serve_putters(q);
    });
}

void QueueTable::put_back(const QueuePtr& q, std::vector<Item> items, uint64_t bytes, bool journal) {
    if (q->deleted) {
        budget_.give_back(bytes);
        return;
    }
    if (journal) {
        auto w = std::make_shared<ManagerWrite>();
        w->kind = ManagerWrite::Kind::insert_items;
        w->name = q->name;
        w->maxsize = q->maxsize;
        w->created_at_ms = q->created_at_ms;
        for (const auto& item : items) {
            w->items.emplace_back(item.seq, item.value);
        }
        std::string name = q->name;
        journal_.write({std::move(w)}, [name](common::Result<void> r) {
            if (!r) {
                spdlog::error(
                    "queue {}: values a client left behind are back in the queue, but {}: a restart "
                    "would lose them",
                    name, io_failure(r.error(), "them"));
            }
        });
    }
    // Where their seqs put them: two gets that failed together come back in either order.
    for (auto& item : items) {
        auto at = std::upper_bound(q->items.begin(), q->items.end(), item.seq,
                                   [](int64_t seq, const Item& x) { return seq < x.seq; });
        q->items.insert(at, std::move(item));
    }
    q->bytes += bytes;
    serve_getters(q);
}

void QueueTable::serve_getters(const QueuePtr& q) {
    while (!q->deleted && !q->getters.empty() && q->items.size() >= q->getters.front().count) {
        Getter g = std::move(q->getters.front());
        q->getters.pop_front();
        timers_.cancel(g.timer);
        take(q, g.count, g.responder);
    }
}

void QueueTable::serve_putters(const QueuePtr& q) {
    while (!q->deleted && !q->putters.empty() && room(*q) >= q->putters.front().values.size()) {
        Putter p = std::move(q->putters.front());
        q->putters.pop_front();
        timers_.cancel(p.timer);
        accept(q, std::move(p.values), p.bytes, p.responder);
    }
}

void QueueTable::withdraw_getter(const QueuePtr& q, uint64_t id, bool timed_out) {
    auto w = std::find_if(q->getters.begin(), q->getters.end(), [id](const Getter& g) { return g.id == id; });
    if (w == q->getters.end()) {
        return;
    }
    Getter gone = std::move(*w);
    q->getters.erase(w);
    timers_.cancel(gone.timer);
    if (timed_out) {
        gone.responder->error(proto::ErrorCode::timeout,
                              "timed out waiting for " + std::to_string(gone.count) + " value" +
                                  (gone.count == 1 ? "" : "s") + " of queue " + q->name,
                              {{"name", q->name}, {"length", q->items.size()}});
    }
    // A get that waited for more than there are may have kept smaller ones behind it waiting.
    serve_getters(q);
    forget_if_idle(q);
}

void QueueTable::withdraw_putter(const QueuePtr& q, uint64_t id, bool timed_out) {
    auto w = std::find_if(q->putters.begin(), q->putters.end(), [id](const Putter& p) { return p.id == id; });
    if (w == q->putters.end()) {
        return;
    }
    Putter gone = std::move(*w);
    q->putters.erase(w);
    timers_.cancel(gone.timer);
    budget_.give_back(gone.bytes);
    if (timed_out) {
        gone.responder->error(proto::ErrorCode::timeout,
                              "timed out waiting for room in queue " + q->name + " (maxsize " +
                                  std::to_string(q->maxsize) + "): nothing was put",
                              {{"name", q->name}, {"length", q->items.size()}});
    }
    serve_putters(q);
    forget_if_idle(q);
}

void QueueTable::forget_if_idle(const QueuePtr& q) {
    if (!q->declared && !q->deleted && q->getters.empty() && q->putters.empty()) {
        auto it = queues_.find(q->name);
        if (it != queues_.end() && it->second == q) {
            queues_.erase(it);
        }
    }
}

void QueueTable::remove(const std::string& name, const std::shared_ptr<Responder>& responder) {
    auto it = queues_.find(name);
    if (it == queues_.end()) {
        throw proto::RequestError(proto::ErrorCode::unknown_id, "no queue " + name, {{"name", name}});
    }
    QueuePtr q = it->second;
    queues_.erase(it);
    q->deleted = true;
    size_t deleted = q->items.size();
    budget_.give_back(q->bytes);
    q->items.clear();
    q->bytes = 0;
    for (auto& g : std::exchange(q->getters, {})) {
        timers_.cancel(g.timer);
        g.responder->error(proto::ErrorCode::unknown_id, "queue " + name + " was deleted", {{"name", name}});
    }
    for (auto& p : std::exchange(q->putters, {})) {
        timers_.cancel(p.timer);
        budget_.give_back(p.bytes);
        p.responder->error(proto::ErrorCode::unknown_id, "queue " + name + " was deleted: nothing was put",
                           {{"name", name}});
    }
    json result{{"name", name}, {"deleted", deleted}};
    if (!q->durable || !q->declared) {
        responder->result(result);
        return;
    }
    auto w = std::make_shared<ManagerWrite>();
    w->kind = ManagerWrite::Kind::delete_queue;
    w->name = name;
    journal_.write({std::move(w)}, [responder, result, name](common::Result<void> r) {
        if (!r) {
            responder->error(proto::ErrorCode::io_error,
                             io_failure(r.error(), "the delete") + ": queue " + name +
                                 " is gone from the daemon, but a restart would bring it back",
                             {{"name", name}});
            return;
        }
        responder->result(result);
    });
}

json QueueTable::describe(const Queue& q) {
    return {{"name", q.name},
            {"length", q.items.size()},
            {"bytes", q.bytes},
            {"maxsize", q.maxsize},
            {"durable", q.declared && q.durable},
            {"getters", q.getters.size()},
            {"putters", q.putters.size()},
            {"created_at", q.declared ? json(common::format_rfc3339_ms(q.created_at_ms)) : json(nullptr)}};
}

json QueueTable::info(const std::string& name) const {
    auto it = queues_.find(name);
    if (it == queues_.end()) {
        throw proto::RequestError(proto::ErrorCode::unknown_id, "no queue " + name, {{"name", name}});
    }
    return describe(*it->second);
}

json QueueTable::list() const {
    json out = json::array();
    for (const auto& [name, q] : queues_) {
        out.push_back(describe(*q));
    }
    return out;
}

}  // namespace mpctl::daemon
