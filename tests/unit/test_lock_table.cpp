// LockTable (daemon/sync/lock_table.hpp) without a socket: grants, arrival order, fencing tokens from the
// journal, and which waits are deadlocks, file locks and semaphores alike. Holders are told apart by the
// pid of a time lease (no process is watched); a real Store in a temp dir gives the tokens.

#include <catch2/catch.hpp>

#include <mpctl/daemon/leases/lease_registry.hpp>
#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/daemon/sync/lock_table.hpp>

#include "scheduler_harness.hpp"
#include "store_harness.hpp"

using mpctl::daemon::LeaseRegistry;
using mpctl::daemon::LeaseSpec;
using mpctl::daemon::LockTable;
using mpctl::daemon::Responder;
using mpctl::proto::ErrorCode;
using mpctl::proto::RequestError;
using mpctl::test::scheduler::FakeTimers;
using namespace std::chrono_literals;

namespace {

struct World {
    mpctl::test::TempDir dir;
    mpctl::test::store::Loop loop;
    std::unique_ptr<mpctl::daemon::Store> store =
        mpctl::test::store::open_store(dir / "mpctld.db", mpctl::daemon::Durability::normal);
    FakeTimers timers;
    LeaseRegistry leases{loop.io, timers};
    std::unique_ptr<LockTable> table;

    World() {
        store->start(loop.io);
        table = std::make_unique<LockTable>(timers, leases, *store, 1);
    }
    ~World() {
        table.reset();
        store->stop();
    }

    // Asks for KEY (a semaphore of LIMIT units, or with LIMIT 0 a file lock on DIR/KEY) for process PID;
    // the request's responder (answered once granted or refused).
    std::shared_ptr<Responder> ask(const std::string& key, pid_t pid, int limit = 1, bool shared = false) {
        auto responder = std::make_shared<Responder>(std::weak_ptr<mpctl::daemon::Session>(), "1", false);
        LockTable::Request r;
        r.path = limit > 0 ? key : dir / key;
        r.limit = limit;
        r.shared = shared;
        r.lease = LeaseSpec{LeaseSpec::Kind::ttl, pid, std::chrono::hours(1)};
        r.responder = responder;
        table->acquire(std::move(r));
        return responder;
    }
    // The same, expected to be granted (the first grant waits for the journal's token ceiling).
    void take(const std::string& key, pid_t pid, int limit = 1) {
        auto r = ask(key, pid, limit);
        REQUIRE(loop.run_until([&] { return r->answered(); }));
    }
    // The deadlock message a request raises, or "" if it was taken or queued.
    std::string refusal(const std::string& key, pid_t pid, int limit = 1) {
        try {
            (void)ask(key, pid, limit);
        } catch (const RequestError& e) {
            CHECK(e.code() == ErrorCode::deadlock);
            return e.what();
        }
        return "";
    }
};

}  // namespace

TEST_CASE("lock table: a wait that closes a cycle through two locks is refused, and names the cycle",
          "[unit][locks]") {
    World w;
    w.take("x", 1);
    w.take("y", 2);
    auto waits = w.ask("x", 2);  // 2 waits for x, held by 1
    CHECK_FALSE(waits->answered());
    CHECK(w.refusal("y", 1) ==
          "deadlock: pid 1 asks for y; y is held by pid 2, which waits for x; x is held by pid 1");
    // Asking again for what one holds is the smallest cycle; another process just waits.
    CHECK(w.refusal("x", 1) == "deadlock: pid 1 asks for x; x is held by pid 1");
    CHECK(w.refusal("y", 3).empty());
}

TEST_CASE("lock table: through a semaphore, a cycle is a deadlock only when every unit's holder is stuck",
          "[unit][locks]") {
    World w;
    w.take("s", 1, 2);  // both units of s: one for pid 1, one for pid 3
    w.take("s", 3, 2);
    w.take("y", 2);
    CHECK(w.refusal("y", 1).empty());  // 1 waits for y (held by 2)
    // 2 asks for s: pid 3 holds a unit and waits for nothing, so it will let go: not a deadlock.
    CHECK(w.refusal("s", 2, 2).empty());
    // Now 3 asks for y too: 3 is stuck behind 2, 2 behind s (1 and 3), 1 behind 2. Nobody can move.
    std::string cycle = w.refusal("y", 3);
    CHECK_THAT(cycle, Catch::Matchers::StartsWith(
                          "deadlock: pid 3 asks for y; y is held by pid 2, which waits for s"));
}

TEST_CASE("lock table: shared grants coexist, an exclusive waiter is served before later shared ones",
          "[unit][locks]") {
    World w;
    auto a = w.ask("f.lock", 1, 0, true);
    REQUIRE(w.loop.run_until([&] { return a->answered(); }));
    auto b = w.ask("f.lock", 2, 0, true);
    CHECK(b->answered());  // shared with shared: at once
    auto exclusive = w.ask("f.lock", 3, 0, false);
    auto late_shared = w.ask("f.lock", 4, 0, true);
    CHECK_FALSE(exclusive->answered());
    CHECK_FALSE(late_shared->answered());  // compatible with the holders, but behind the exclusive one
    (void)w.table->release(w.dir / "f.lock", std::nullopt, 1, nullptr);
    (void)w.table->release(w.dir / "f.lock", std::nullopt, 2, nullptr);
    CHECK(exclusive->answered());
    CHECK_FALSE(late_shared->answered());
    (void)w.table->release(w.dir / "f.lock", std::nullopt, 3, nullptr);
    CHECK(late_shared->answered());
}

TEST_CASE("lock table: a time lease ends its grant and the next waiter gets it", "[unit][locks]") {
    World w;
    auto first = w.ask("s", 1);
    REQUIRE(w.loop.run_until([&] { return first->answered(); }));
    auto second = w.ask("s", 2);
    CHECK_FALSE(second->answered());
    w.timers.advance(3600 * 1000);  // both leases run out: the first's frees s for the second
    CHECK(second->answered());
    CHECK(w.table->held() == 0);  // and the second's, granted an hour after it asked, ran out with it
}

TEST_CASE("lock table: past its limit of grants and waits, a new request is busy, and nothing changes",
          "[unit][locks]") {
    World w;
    for (size_t i = 0; i < LockTable::k_max_in_use; ++i) {
        w.take("many", static_cast<pid_t>(i + 1), 1000000);
    }
    CHECK(w.table->held() == LockTable::k_max_in_use);
    try {
        (void)w.ask("other", 1);
        FAIL("a request past the limit was taken");
    } catch (const RequestError& e) {
        CHECK(e.code() == ErrorCode::busy);
    }
    CHECK(w.table->held() == LockTable::k_max_in_use);
    (void)w.table->release("many", std::nullopt, 1, nullptr, true);
    w.take("other", 1);  // room again
}
