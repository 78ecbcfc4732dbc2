#pragma once
// LeaseRegistry: who a holding is leased to, and telling the holder when the lease ends. Everything the
// daemon holds for a client outside of tasks (a file lock, a semaphore count; shared-memory segments and
// queues next) is leased to one of:
//   - a process: the lease ends when it exits, SIGKILL included (watched by a pidfd in the loop; one
//     pidfd per process however many leases it has);
//   - a connection: the lease ends when the connection closes (`mpctl lock run` holds for as long as it
//     runs);
//   - a time: the lease ends TTL after it began, unless released first.
// Whoever holds something opens a lease with an end callback, and releases the lease when the holding is
// given back by other means (then the callback never runs). Loop thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sys/types.h>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::daemon {

class Session;

struct LeaseSpec {
    enum class Kind { process, connection, ttl };
    Kind kind = Kind::process;
    // The process the holding is for, whatever the kind: shown in lists, matched by releases, and the
    // identity deadlock detection follows. For a process lease, the one watched.
    pid_t pid = 0;
    std::chrono::milliseconds ttl{0};  // Kind::ttl
};

class LeaseRegistry {
  public:
    using LeaseId = uint64_t;

    LeaseRegistry(asio::io_context& io, Timers& timers) : io_(io), timers_(timers) {}
    ~LeaseRegistry();
    LeaseRegistry(const LeaseRegistry&) = delete;
    LeaseRegistry& operator=(const LeaseRegistry&) = delete;

    // Opens a lease; ON_END runs on the loop when it ends (never from within open). SESSION is the
    // requesting connection (a connection lease follows it). Fails when the process does not exist (or a
    // connection lease's connection is already closed).
    [[nodiscard]] common::Result<LeaseId> open(const LeaseSpec& spec, const std::shared_ptr<Session>& session,
                                               std::function<void()> on_end);
    // The holding was given back: the lease is closed and ON_END will not run.
    void release(LeaseId id);

    [[nodiscard]] const LeaseSpec* find(LeaseId id) const;
    // Whether lease ID follows connection SESSION.
    [[nodiscard]] bool follows(LeaseId id, const Session* session) const;
    // {"kind": "process"|"connection"|"ttl", "pid": N, "expires_at": RFC 3339 (ttl)}.
    [[nodiscard]] nlohmann::json describe(LeaseId id) const;

    [[nodiscard]] size_t size() const { return leases_.size(); }
    [[nodiscard]] size_t watched_processes() const { return processes_.size(); }

  private:
    struct Lease {
        LeaseSpec spec;
        std::function<void()> on_end;
        std::weak_ptr<Session> session;  // connection leases
        uint64_t close_hook = 0;
        TimerId timer = 0;
        int64_t expires_at_ms = 0;  // ttl leases
    };
    struct ProcessWatch {
        std::unique_ptr<asio::posix::stream_descriptor> pidfd;
        std::map<LeaseId, bool> leases;  // those that follow this process
    };

    // Closes lease ID (its watch, hook or timer) and returns its end callback.
    std::function<void()> close(LeaseId id);
    // Every lease of process PID ends: it exited.
    void process_ended(pid_t pid);
    // Ends lease ID now: closes it, then runs its callback.
    void end(LeaseId id);

    asio::io_context& io_;
    Timers& timers_;
    LeaseId next_ = 1;
    std::map<LeaseId, Lease> leases_;
    std::map<pid_t, ProcessWatch> processes_;
};

}  // namespace mpctl::daemon
