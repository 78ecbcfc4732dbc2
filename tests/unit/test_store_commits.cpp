// The SQLite journal through its public interface: group commits under bursts, when an acknowledged write
// commits, and the WAL's checkpoints. Both durabilities run the same cases.

#include <mpctl/daemon/store/group_commit.hpp>

#include "store_harness.hpp"

using namespace mpctl::test::store;

TEST_CASE("every write of a burst completes and is journaled", "[unit][store]") {
    mpctl::test::TempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    Loop loop;
    auto store = open_store(dir / "mpctl.db", durability);
    store->start(loop.io);
    std::vector<Task> tasks;
    for (int64_t id = 1; id <= 200; ++id) {
        tasks.push_back(make_task(id, {{"argv", {"t"}}}));
    }
    int done = 0;
    int failed = 0;
    for (const auto& t : tasks) {
        store->insert_tasks({&t}, {}, [&](Result<void> r) {
            if (r) {
                ++done;
            } else {
                ++failed;
            }
        });
    }
    REQUIRE(loop.run_until([&] { return done + failed == 200; }));
    CHECK(failed == 0);
    CHECK(store->commit_count() >= 1);
    CHECK(store->commit_count() <= 200);
    if (durability == Durability::normal) {
        // Everything queued while the loop was busy goes into one commit.
        CHECK(store->commit_count() == 1);
    }
    store->stop();
    auto reopened = open_store(dir / "mpctl.db", durability);
    auto loaded = reopened->load_tasks();
    REQUIRE(loaded);
    CHECK(loaded->size() == 200);
}

TEST_CASE("with durability normal an acknowledged insert commits at once and not after the update delay",
          "[unit][store]") {
    mpctl::test::TempDir dir;
    Loop loop;
    auto store = open_store(dir / "mpctl.db", Durability::normal);
    store->start(loop.io);
    Task t = make_task(1, {{"argv", {"true"}}});
    // An unacknowledged update first arms the deferred flush; the insert must not wait for it.
    store->update_task(t);
    std::optional<Result<void>> result;
    store->insert_tasks({&t}, {}, [&](Result<void> r) { result = std::move(r); });
    // poll() runs what is ready now and never waits: a commit parked behind a timer would not be.
    auto before = std::chrono::steady_clock::now();
    loop.io.poll();
    if (std::chrono::steady_clock::now() - before < std::chrono::milliseconds(2)) {
        CHECK(result.has_value());
    }
    REQUIRE(loop.run_until([&] { return result.has_value(); }));
    CHECK(*result);
    store->stop();
}

TEST_CASE("the WAL is checkpointed and stays bounded while commits keep coming", "[unit][store]") {
    mpctl::test::TempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    Loop loop;
    auto store = open_store(dir / "mpctl.db", durability);
    store->start(loop.io);
    const std::string wal = dir / "mpctl.db-wal";
    auto wal_bytes = [&] {
        struct stat st {};
        return ::stat(wal.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
    };
    // Many commits of a few pages each: about 25 MB of WAL frames if nothing were ever checkpointed.
    std::string big(2000, 'x');
    int64_t next = 1;
    int64_t most = 0;
    for (int burst = 0; burst < 40; ++burst) {
        std::vector<Task> tasks;
        for (int i = 0; i < 50; ++i) {
            tasks.push_back(make_task(next++, {{"argv", {"t", big}}}));
        }
        std::vector<const Task*> ptrs;
        for (const auto& t : tasks) {
            ptrs.push_back(&t);
        }
        REQUIRE(insert(*store, loop, ptrs));
        most = std::max(most, wal_bytes());
    }
    // The checkpointer catches up while the commits come (its copies are passive); once it has copied
    // everything, the next commit starts the WAL over and the file is cut back to 4 MiB.
    CHECK(loop.run_until([&] {
        Task t = make_task(next++, {{"argv", {"t"}}});
        return insert(*store, loop, {&t}) && wal_bytes() <= 4 * 1024 * 1024;
    }));
    INFO("largest WAL seen: " << most);
    CHECK(most < 20 * 1024 * 1024);
    store->stop();
}

TEST_CASE(
    "with durability normal a groupable barrier shares the next commit only when commits come back to back",
    "[unit][store]") {
    mpctl::test::TempDir dir;
    Loop loop;
    auto store = open_store(dir / "mpctl.db", Durability::normal);
    store->start(loop.io);
    using Clock = std::chrono::steady_clock;
    int told = 0;
    auto tell = [&](Result<void> r) {
        CHECK(r);
        ++told;
    };

    // No commit yet: nothing to share, so it commits at once (poll() never waits for a timer).
    store->after_commits(tell, true);
    loop.io.poll();
    CHECK(told == 1);
    CHECK(store->commit_count() == 1);

    // Right after a commit, a groupable barrier waits for the gap; a plain one does not. (Whether the
    // machine was quick enough to stay within the gap is checked, not assumed.)
    Task t = make_task(1, {{"argv", {"true"}}});
    std::optional<Result<void>> inserted;
    store->insert_tasks({&t}, {}, [&](Result<void> r) { inserted = std::move(r); });
    auto committed = Clock::now();  // at most the commit's own time
    loop.io.poll();
    REQUIRE(inserted.has_value());
    uint64_t commits = store->commit_count();
    for (int i = 0; i < 5; ++i) {
        store->update_task(t);
        store->after_commits(tell, true);
        loop.io.poll();
    }
    bool within_gap = Clock::now() - committed < mpctl::daemon::GroupCommit::k_busy_gap;
    if (within_gap) {
        CHECK(told == 1);
    } else {
        WARN("the machine took longer than the gap: whether the barriers waited is not checked this run");
    }
    REQUIRE(loop.run_until([&] { return told == 6; }));
    if (within_gap) {
        // The five barriers, and the updates queued before each, were one commit.
        CHECK(store->commit_count() == commits + 1);
    }
    // Right after a commit, a plain barrier does not wait.
    inserted.reset();
    Task u = make_task(2, {{"argv", {"true"}}});
    store->insert_tasks({&u}, {}, [&](Result<void> r) { inserted = std::move(r); });
    committed = Clock::now();
    loop.io.poll();
    REQUIRE(inserted.has_value());
    store->after_commits(tell, false);
    loop.io.poll();
    if (Clock::now() - committed < mpctl::daemon::GroupCommit::k_busy_gap) {
        CHECK(told == 7);
    } else {
        WARN(
            "the machine took longer than the gap: whether the plain barrier waited is not checked this run");
    }
    REQUIRE(loop.run_until([&] { return told == 7; }));
    store->stop();
}
