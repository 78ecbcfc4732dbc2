#include <algorithm>
#include <set>
#include <unistd.h>

#include <mpctl/common/time.hpp>
#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/daemon/sync/flock_linux.hpp>
#include <mpctl/daemon/sync/lock_table.hpp>
#include <mpctl/daemon/sync/take_waiter.hpp>

namespace mpctl::daemon {

using nlohmann::json;
using proto::ErrorCode;
using proto::RequestError;

namespace {

const char* mode_name(bool shared) {
    return shared ? "shared" : "exclusive";
}

}  // namespace

bool LockTable::compatible(const Lock& lock, bool shared) {
    if (lock.limit > 0) {
        return lock.holders.size() < static_cast<size_t>(lock.limit);
    }
    if (lock.holders.empty()) {
        return true;
    }
    return shared &&
           std::all_of(lock.holders.begin(), lock.holders.end(), [](const Holder& h) { return h.shared; });
}

std::string LockTable::what_is_busy(const std::string& key, const Lock& lock) {
    if (lock.limit > 0) {
        return "semaphore " + key + " is at its limit (" + std::to_string(lock.limit) + ")";
    }
    return key + " is locked";
}

LockTable::LockTable(Timers& timers, LeaseRegistry& leases, Store& store, int64_t next_token)
    : timers_(timers), leases_(leases), tokens_(store, timers, next_token, [this] {
          // Tokens that were missing are there: every lock whose first waiter waited for one goes on.
          std::vector<std::string> paths;
          for (const auto& [path, lock] : locks_) {
              if (!lock.waiters.empty()) {
                  paths.push_back(path);
              }
          }
          for (const auto& path : paths) {
              pump(path);
          }
      }) {}

LockTable::~LockTable() {
    for (auto& [path, lock] : locks_) {
        timers_.cancel(lock.poll);
        for (auto& w : lock.waiters) {
            timers_.cancel(w.timeout);
            leases_.release(w.lease);
        }
        for (auto& h : lock.holders) {
            leases_.release(h.lease);
        }
    }
}

void LockTable::acquire(Request request) {
    std::string path = request.path;
    if (request.limit == 0) {
        if (auto ok = check_lock_path(path); !ok) {
            proto::throw_invalid_params("params.path: " + ok.error().message());
        }
    } else if (auto it = locks_.find(path); it != locks_.end() && it->second.limit != request.limit) {
        // A semaphore's limit holds while it is in use; once nobody holds or waits for it, it goes.
        throw RequestError(ErrorCode::invalid_state,
                           "semaphore " + path + " is in use with limit " + std::to_string(it->second.limit),
                           {{"name", path}, {"limit", it->second.limit}});
    }
    size_t in_use = 0;
    for (const auto& [key, lock] : locks_) {
        in_use += lock.holders.size() + lock.waiters.size();
    }
    if (in_use >= k_max_in_use) {
        throw RequestError(ErrorCode::busy,
                           "the daemon holds or waits for " + std::to_string(in_use) +
                               " locks and semaphore units already, its limit: release some first",
                           {{"limit", k_max_in_use}});
    }
    uint64_t id = next_id_++;
    auto lease = leases_.open(request.lease, request.responder->session(),
                              [this, path, id] { lease_ended(path, id); });
    if (!lease) {
        throw RequestError(ErrorCode::unknown_id, lease.error().message(), {{"pid", request.lease.pid}});
    }
    Waiter w;
    w.id = id;
    w.shared = request.shared;
    w.lease = *lease;
    w.pid = request.lease.pid;
    w.owner.pid = w.pid;
    if (request.lease.kind == LeaseSpec::Kind::connection) {
        w.owner.connection = request.responder->session().get();
    }
    w.since_ms = common::now_unix_ms();
    w.responder = request.responder;
    Lock& lock = locks_[path];
    lock.limit = request.limit;
    const char* key_name = request.limit > 0 ? "name" : "path";
    // Asked before it queues: a wait that would close a cycle is refused, not waited into.
    bool must_wait = !lock.waiters.empty() || !compatible(lock, request.shared);
    if (must_wait && !request.nonblock) {
        if (auto cycle = deadlock(w.owner, path, request.shared)) {
            leases_.release(w.lease);
            forget_if_idle(path);
            throw RequestError(ErrorCode::deadlock, "deadlock: " + *cycle, {{key_name, path}});
        }
    }
    lock.waiters.push_back(std::move(w));
    Stall stall = pump(path);
    auto it = locks_.find(path);
    if (it == locks_.end()) {
        return;
    }
    auto still = std::find_if(it->second.waiters.begin(), it->second.waiters.end(),
                              [id](const Waiter& x) { return x.id == id; });
    if (still == it->second.waiters.end()) {
        return;  // granted (or refused) by the pump
    }
    if (request.nonblock && stall != Stall::token) {
        withdraw(
            path, id, ErrorCode::busy,
            what_is_busy(path, it->second) + (stall == Stall::outside ? " by a process outside mpctl" : ""),
            {{key_name, path}});
        return;
    }
    if (request.timeout) {
        still->timeout = timers_.start(*request.timeout, [this, path, id, key_name] {
            auto lock = locks_.find(path);
            std::string what = lock != locks_.end() ? what_is_busy(path, lock->second) : path;
            withdraw(path, id, ErrorCode::timeout, "timed out: " + what, {{key_name, path}});
        });
    }
    // A client that goes away while it waits takes nothing (the lease may be its parent's).
    request.responder->on_disconnect([this, path, id] { withdraw(path, id, ErrorCode::internal_error, ""); });
}

LockTable::Stall LockTable::pump(const std::string& path) {
    auto it = locks_.find(path);
    if (it == locks_.end()) {
        return Stall::none;
    }
    Lock& lock = it->second;
    while (!lock.waiters.empty()) {
        Waiter& w = lock.waiters.front();
        if (!compatible(lock, w.shared)) {
            return Stall::holders;
        }
        // A semaphore is the daemon's alone; a file lock is a flock others see.
        auto fd = lock.limit > 0 ? common::Result<common::UniqueFd>() : try_flock(path, w.shared);
        if (!fd && is_busy(fd.error())) {
            // Held outside the daemon: try again later, a little later each time.
            if (lock.poll == 0) {
                lock.backoff = std::clamp(lock.backoff * 2, k_first_poll, k_max_poll);
                lock.poll = timers_.start(lock.backoff, [this, path] {
                    if (auto again = locks_.find(path); again != locks_.end()) {
                        again->second.poll = 0;
                        pump(path);
                    }
                });
            }
            return Stall::outside;
        }
        if (!fd) {
            Waiter failed = std::move(lock.waiters.front());
            lock.waiters.pop_front();
            timers_.cancel(failed.timeout);
            leases_.release(failed.lease);
            failed.responder->error(ErrorCode::io_error, fd.error().message(), {{"path", path}});
            continue;
        }
        auto token = tokens_.take();
        if (!token) {
            return Stall::token;  // fd closes: the lock is taken again once the token is there
        }
        Waiter granted = std::move(lock.waiters.front());
        lock.waiters.pop_front();
        grant(path, lock, std::move(granted), std::move(*fd), *token);
    }
    lock.backoff = std::chrono::milliseconds(0);
    forget_if_idle(path);
    return Stall::none;
}

void LockTable::grant(const std::string& path, Lock& lock, Waiter w, common::UniqueFd fd, int64_t token) {
    timers_.cancel(w.timeout);
    Holder h;
    h.id = w.id;
    h.shared = w.shared;
    h.lease = w.lease;
    h.pid = w.pid;
    h.owner = w.owner;
    h.token = token;
    h.since_ms = common::now_unix_ms();
    h.fd = std::move(fd);
    json answer = describe(h);
    if (lock.limit > 0) {
        answer.erase("mode");
        answer["name"] = path;
        answer["limit"] = lock.limit;
    } else {
        answer["path"] = path;
    }
    lock.holders.push_back(std::move(h));
    w.responder->result(std::move(answer));
}

void LockTable::withdraw(const std::string& path, uint64_t id, ErrorCode code, const std::string& message,
                         json data) {
    auto taken = take_waiter(locks_, path, id, &Lock::waiters);
    if (!taken) {
        return;
    }
    auto& [gone, was_first] = *taken;
    timers_.cancel(gone.timeout);
    leases_.release(gone.lease);
    if (!message.empty()) {
        gone.responder->error(code, message, std::move(data));
    }
    if (was_first) {
        pump(path);  // the next in line may go now
    } else {
        forget_if_idle(path);
    }
}

void LockTable::lease_ended(const std::string& path, uint64_t id) {
    auto it = locks_.find(path);
    if (it == locks_.end()) {
        return;
    }
    auto& holders = it->second.holders;
    auto h = std::find_if(holders.begin(), holders.end(), [id](const Holder& x) { return x.id == id; });
    if (h != holders.end()) {
        holders.erase(h);  // closes its descriptor: the flock goes
        pump(path);
        return;
    }
    withdraw(path, id, ErrorCode::unknown_id, "the owner of the lease ended while it waited for " + path);
}

json LockTable::release(const std::string& path, std::optional<int64_t> token, pid_t pid,
                        const Session* session, bool one) {
    auto it = locks_.find(path);
    json released = json::array();
    const bool semaphore = it != locks_.end() && it->second.limit > 0;
    if (it != locks_.end()) {
        auto& holders = it->second.holders;
        for (auto h = holders.begin(); h != holders.end();) {
            const LeaseSpec* spec = leases_.find(h->lease);
            bool connection = spec != nullptr && spec->kind == LeaseSpec::Kind::connection;
            bool matches = token ? h->token == *token
                                 : h->pid == pid && (!connection || leases_.follows(h->lease, session));
            if (!matches) {
                ++h;
                continue;
            }
            json j = describe(*h);
            j[semaphore ? "name" : "path"] = path;
            if (semaphore) {
                j.erase("mode");
            }
            released.push_back(std::move(j));
            leases_.release(h->lease);
            h = holders.erase(h);
            if (one) {
                break;
            }
        }
    }
    if (released.empty()) {
        std::string what = semaphore || one ? "semaphore " + path : "lock on " + path;
        throw RequestError(ErrorCode::unknown_id,
                           token ? "no " + what + " with token " + std::to_string(*token)
                                 : "process " + std::to_string(pid) + " holds no " + what,
                           {{one ? "name" : "path", path}});
    }
    pump(path);
    return released;
}

std::optional<std::string> LockTable::deadlock(const Owner& owner, const std::string& path,
                                               bool shared) const {
    // Graph reduction, which is right for file locks (a waiter needs every holder in its way gone) and for
    // semaphores (any one unit will do) alike: an owner that waits for nothing will let go of what it
    // holds some day; so will an owner whose every wait could then be granted; repeat until nothing
    // changes. If the asking owner is still stuck with its new wait added, granting waits can never free
    // it: a deadlock. (Waiters are assumed blocked while they wait, as a shell is under `mpctl lock
    // acquire`; arrival order and holders outside the daemon are left out: they delay, never deadlock.)
    struct Wait {
        std::string key;
        bool shared = false;
    };
    struct Held {
        Owner owner;
        bool shared = false;
    };
    auto key_of = [](const Owner& o) {
        return std::pair(o.pid, o.connection);
    };
    std::map<std::pair<pid_t, const void*>, std::vector<Wait>> waits;
    std::map<std::string, std::vector<Held>> held;
    for (const auto& [key, lock] : locks_) {
        for (const Waiter& w : lock.waiters) {
            waits[key_of(w.owner)].push_back({key, w.shared});
        }
        for (const Holder& h : lock.holders) {
            held[key].push_back({h.owner, h.shared});
        }
    }
    waits[key_of(owner)].push_back({path, shared});
    auto grantable = [&](const Wait& w) {
        const Lock& lock = locks_.at(w.key);
        const auto& now = held[w.key];
        if (lock.limit > 0) {
            return now.size() < static_cast<size_t>(lock.limit);
        }
        return now.empty() ||
               (w.shared && std::all_of(now.begin(), now.end(), [](const Held& h) { return h.shared; }));
    };
    auto free_owner = [&](const std::pair<pid_t, const void*>& o) {
        for (auto& [key, holders] : held) {
            std::erase_if(holders, [&](const Held& h) { return key_of(h.owner) == o; });
        }
    };
    // Owners that wait for nothing let go in time.
    std::set<std::pair<pid_t, const void*>> holders_seen;
    for (const auto& [key, holders] : held) {
        for (const Held& h : holders) {
            holders_seen.insert(key_of(h.owner));
        }
    }
    for (const auto& o : holders_seen) {
        if (!waits.contains(o)) {
            free_owner(o);
        }
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (auto it = waits.begin(); it != waits.end();) {
            if (std::all_of(it->second.begin(), it->second.end(), grantable)) {
                free_owner(it->first);
                it = waits.erase(it);
                changed = true;
            } else {
                ++it;
            }
        }
    }
    if (!waits.contains(key_of(owner))) {
        return std::nullopt;
    }
    // Name the cycle: from what the asker wants, follow a stuck holder to what it waits for, until the
    // asker (or a step already taken) comes round again.
    std::string words = "pid " + std::to_string(owner.pid) + " asks for " + path;
    std::set<std::string> named;
    std::string key = path;
    while (named.insert(key).second) {
        const Held* stuck = nullptr;
        for (const Held& h : held[key]) {
            if (key_of(h.owner) == key_of(owner)) {
                return words + "; " + key + " is held by pid " + std::to_string(owner.pid);
            }
            if (stuck == nullptr && waits.contains(key_of(h.owner))) {
                stuck = &h;
            }
        }
        if (stuck == nullptr) {
            break;
        }
        const Wait& next = waits[key_of(stuck->owner)].front();
        words += "; " + key + " is held by pid " + std::to_string(stuck->owner.pid) + ", which waits for " +
                 next.key;
        key = next.key;
    }
    return words;
}

void LockTable::forget_if_idle(const std::string& path) {
    auto it = locks_.find(path);
    if (it != locks_.end() && it->second.holders.empty() && it->second.waiters.empty()) {
        timers_.cancel(it->second.poll);
        locks_.erase(it);
    }
}

json LockTable::describe(const Holder& h) const {
    return {{"mode", mode_name(h.shared)},
            {"pid", h.pid},
            {"token", h.token},
            {"since", common::format_rfc3339_ms(h.since_ms)},
            {"lease", leases_.describe(h.lease)}};
}

json LockTable::list(const std::optional<std::string>& path) const {
    json out = json::array();
    const FileLockHolders outsiders(::getpid());
    auto entry = [&](const std::string& file, const Lock* lock) {
        json holders = json::array(), waiters = json::array(), outside = json::array();
        if (lock != nullptr) {
            for (const Holder& h : lock->holders) {
                holders.push_back(describe(h));
            }
            for (const Waiter& w : lock->waiters) {
                waiters.push_back({{"mode", mode_name(w.shared)},
                                   {"pid", w.pid},
                                   {"since", common::format_rfc3339_ms(w.since_ms)},
                                   {"lease", leases_.describe(w.lease)}});
            }
        }
        for (const auto& o : outsiders.on(file)) {
            outside.push_back({{"pid", o.pid}, {"kind", o.kind}, {"mode", o.write ? "exclusive" : "shared"}});
        }
        out.push_back({{"path", file}, {"holders", holders}, {"waiters", waiters}, {"outside", outside}});
    };
    if (path) {
        auto it = locks_.find(*path);
        entry(*path, it == locks_.end() ? nullptr : &it->second);
        return out;
    }
    for (const auto& [file, lock] : locks_) {
        if (lock.limit == 0) {
            entry(file, &lock);
        }
    }
    return out;
}

json LockTable::list_semaphores(const std::optional<std::string>& name) const {
    json out = json::array();
    for (const auto& [key, lock] : locks_) {
        if (lock.limit == 0 || (name && key != *name)) {
            continue;
        }
        json holders = json::array(), waiters = json::array();
        for (const Holder& h : lock.holders) {
            json j = describe(h);
            j.erase("mode");
            holders.push_back(std::move(j));
        }
        for (const Waiter& w : lock.waiters) {
            waiters.push_back({{"pid", w.pid},
                               {"since", common::format_rfc3339_ms(w.since_ms)},
                               {"lease", leases_.describe(w.lease)}});
        }
        out.push_back({{"name", key}, {"limit", lock.limit}, {"holders", holders}, {"waiters", waiters}});
    }
    return out;
}

size_t LockTable::held() const {
    size_t n = 0;
    for (const auto& [path, lock] : locks_) {
        n += lock.holders.size();
    }
    return n;
}

}  // namespace mpctl::daemon
