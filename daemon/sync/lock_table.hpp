#pragma once
// LockTable: the file locks and the semaphores the daemon holds for its clients (`mpctl lock`, `mpctl sem`,
// lock.* and sem.* in PROTOCOL.md). A file lock's grant is a flock(2) on the file (sync/flock_linux.hpp), so
// flock(1), Python's filelock and fcntl.flock users see it; a semaphore of limit N grants up to N units,
// in the daemon only. Each grant is leased to its holder (leases/lease_registry.hpp) and released when the
// lease ends, and carries a fencing token (fencing_tokens.hpp). Both live in one table, keyed by path for
// file locks (always absolute: "/...") and by name for semaphores (never starting with '/'), so that
// waiting, leases and deadlock detection are one mechanism across both.
//
// Waiters that go through the daemon are served first come, first served: a waiter is granted only once
// every waiter before it on that file was, so a stream of shared holders cannot starve an exclusive one.
// A lock held by a process outside the daemon cannot be waited on in an event loop (flock has no
// readiness to poll for), so the first waiter tries again with a growing pause (2 ms to 50 ms).
//
// Deadlocks among waiters of the daemon are refused, not waited into: a blocking acquire that would close
// a cycle (A holds X and waits for Y, B holds Y and asks for X; or A asks again for what it holds) gets a
// `deadlock` error naming the cycle. A file lock waits for every holder in its way; a semaphore for any
// one unit, so a cycle closes through a semaphore only when every holder of it is stuck. Holders are told
// apart by owner: the lease's process, or for a connection lease the connection (two connections of one
// process, two threads say, are two holders, as two open()s of the file are to flock). Loop thread only.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/leases/lease_registry.hpp>
#include <mpctl/daemon/sync/fencing_tokens.hpp>
#include <mpctl/daemon/tasks/timers.hpp>
#include <mpctl/proto/errors.hpp>

namespace mpctl::daemon {

class Responder;
class Session;

class LockTable {
  public:
    static constexpr std::chrono::milliseconds k_first_poll{2};
    static constexpr std::chrono::milliseconds k_max_poll{50};
    // Grants and waits the daemon keeps at once, all clients together: each file lock held is a descriptor,
    // and a client must not be able to take them all (past it: busy).
    static constexpr size_t k_max_in_use = 16384;

    // NEXT_TOKEN: the journal's meta.next_lock_token.
    LockTable(Timers& timers, LeaseRegistry& leases, Store& store, int64_t next_token);
    ~LockTable();
    LockTable(const LockTable&) = delete;
    LockTable& operator=(const LockTable&) = delete;

    struct Request {
        std::string path;  // a file lock's absolute path, or a semaphore's name
        int limit = 0;     // a semaphore's (0: a file lock)
        bool shared = false;
        bool nonblock = false;                             // busy rather than wait
        std::optional<std::chrono::milliseconds> timeout;  // then a timeout error
        LeaseSpec lease;
        std::shared_ptr<Responder> responder;
    };
    // Answers REQUEST's responder: the grant (now or once its turn comes), or an error (busy, timeout,
    // deadlock, the lease's process gone, the file unusable). Throws a RequestError for what it refuses at
    // once.
    void acquire(Request request);

    // Gives back the holdings of PATH (a file lock, or a semaphore's name) with TOKEN, or (without one)
    // those for process PID, every one of them or the oldest ONE; a holding leased to a connection only to
    // that connection (SESSION). The released grants; throws unknown_id if none matched.
    nlohmann::json release(const std::string& path, std::optional<int64_t> token, pid_t pid,
                           const Session* session, bool one = false);

    // The file locks held or waited for (PATH: that file only, even if the daemon holds nothing there),
    // with the locks processes outside the daemon hold on each file (/proc/locks).
    [[nodiscard]] nlohmann::json list(const std::optional<std::string>& path) const;
    // The semaphores in use (NAME: that one only).
    [[nodiscard]] nlohmann::json list_semaphores(const std::optional<std::string>& name) const;

    [[nodiscard]] size_t held() const;

  private:
    // Who waits or holds, for deadlock detection: a connection (connection leases) or else a process.
    struct Owner {
        pid_t pid = 0;
        const void* connection = nullptr;
        bool operator==(const Owner&) const = default;
    };
    struct Holder {
        uint64_t id = 0;
        bool shared = false;
        LeaseRegistry::LeaseId lease = 0;
        pid_t pid = 0;
        Owner owner;
        int64_t token = 0;
        int64_t since_ms = 0;
        common::UniqueFd fd;  // the flock
    };
    struct Waiter {
        uint64_t id = 0;
        bool shared = false;
        LeaseRegistry::LeaseId lease = 0;
        pid_t pid = 0;
        Owner owner;
        int64_t since_ms = 0;
        std::shared_ptr<Responder> responder;
        TimerId timeout = 0;
    };
    struct Lock {
        int limit = 0;  // a semaphore's; 0 for a file lock
        std::vector<Holder> holders;
        std::deque<Waiter> waiters;
        TimerId poll = 0;  // trying again while a process outside holds it
        std::chrono::milliseconds backoff{0};
    };
    // Why the first waiter of a lock was not granted.
    enum class Stall { none, holders, outside, token };

    // Whether a waiter of mode SHARED may join LOCK's holders now.
    [[nodiscard]] static bool compatible(const Lock& lock, bool shared);
    // What a busy or timed-out waiter of KEY is told ("/a is locked", "semaphore s is at its limit (2)").
    [[nodiscard]] static std::string what_is_busy(const std::string& key, const Lock& lock);

    // Grants to the waiters of PATH in order, as far as they can be.
    Stall pump(const std::string& path);
    // The grant's answer, and the holder it becomes.
    void grant(const std::string& path, Lock& lock, Waiter w, common::UniqueFd fd, int64_t token);
    // Takes waiter ID out of PATH's queue (answering it with an error unless MESSAGE is empty).
    void withdraw(const std::string& path, uint64_t id, proto::ErrorCode code, const std::string& message,
                  nlohmann::json data = nullptr);
    // Lease of holder or waiter ID on PATH ended (its process exited, its connection closed, its time ran
    // out).
    void lease_ended(const std::string& path, uint64_t id);
    // Drops PATH's entry if nothing holds or waits for it.
    void forget_if_idle(const std::string& path);
    // Whether a wait by OWNER for PATH (SHARED) could never be granted, the daemon's other waiters blocked
    // as they are: the cycle in words ("pid 7 asks for /b; /b is held by pid 8, which waits for /a; /a is
    // held by pid 7"), or nullopt.
    [[nodiscard]] std::optional<std::string> deadlock(const Owner& owner, const std::string& path,
                                                      bool shared) const;
    [[nodiscard]] nlohmann::json describe(const Holder& h) const;

    Timers& timers_;
    LeaseRegistry& leases_;
    FencingTokens tokens_;
    uint64_t next_id_ = 1;
    std::map<std::string, Lock> locks_;
};

}  // namespace mpctl::daemon
