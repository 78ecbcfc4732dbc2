// A damaged journal: found at open, and what `mpctld --recover` salvages from it (daemon/store/integrity,
// salvage and recovery). The damage is real: pages of the file overwritten (tests/support/journal_damage).

#include <limits>
#include <set>

#include <mpctl/daemon/store/recovery.hpp>
#include <mpctl/daemon/store/salvage.hpp>

#include "journal_damage.hpp"
#include "store_harness.hpp"

using namespace mpctl::test::store;
using mpctl::daemon::KeyRange;
using mpctl::daemon::Probe;
using mpctl::daemon::TableSalvage;

namespace {

constexpr int64_t k_max = std::numeric_limits<int64_t>::max();

// A table whose keys are KEYS, and whose keys in DAMAGED ranges sit on pages that cannot be read: a probe
// at S fails when the first key at or after S is on such a page, or when S itself falls in one.
struct FakeTable {
    std::set<int64_t> keys;
    std::vector<KeyRange> damaged;
    int probes = 0;

    [[nodiscard]] bool in_damage(int64_t k) const {
        for (const auto& r : damaged) {
            if (k >= r.first && k <= r.last) {
                return true;
            }
        }
        return false;
    }
    Probe operator()(int64_t start) {
        ++probes;
        if (in_damage(start)) {
            return Probe::failed;
        }
        auto it = keys.lower_bound(start);
        if (it == keys.end()) {
            return Probe::end;
        }
        return in_damage(*it) ? Probe::failed : Probe::row;
    }
};

// Writes N tasks with ids 1..N (and a pool) to a journal at PATH, and closes it cleanly.
void write_journal(const std::string& path, int n) {
    Loop loop;
    auto store = open_store(path, Durability::normal);
    store->start(loop.io);
    std::vector<Task> tasks;
    for (int i = 1; i <= n; ++i) {
        tasks.push_back(make_task(
            i, {{"argv", {"echo", "task " + std::to_string(i)}}, {"name", "n" + std::to_string(i)}}));
    }
    // The first one running, with what a restart re-adopts it by.
    tasks.front().state = TaskState::running;
    tasks.front().attempts = 1;
    tasks.front().pid = 4242;
    tasks.front().pid_start = 31337;
    std::vector<const Task*> ptrs;
    for (const auto& t : tasks) {
        ptrs.push_back(&t);
    }
    REQUIRE(insert(*store, loop, ptrs));
    REQUIRE(set_pool(*store, loop, "gpu", 2));
    // Shared-memory segments: one made with persist, one leased to a process, and a row no start could
    // use (a name no segment can have).
    for (const auto& row : {mpctl::daemon::SegmentRow{"kept", 1, 2, 4096, 0600, 1000, "", 0, 0, 0},
                            mpctl::daemon::SegmentRow{"leased", 1, 3, 64, 0640, 2000, "process", 42, 99, 0},
                            mpctl::daemon::SegmentRow{"no/such", 1, 4, 64, 0600, 3000, "", 0, 0, 0}}) {
        bool done = false;
        store->put_segment(row, [&](Result<void> r) {
            REQUIRE(r);
            done = true;
        });
        REQUIRE(loop.run_until([&] { return done; }));
    }
    // The manager's: a queue of two values and a dict of one key, whose deleted key's version stays.
    auto write = [](mpctl::daemon::ManagerWrite::Kind kind, std::string name) {
        auto w = std::make_shared<mpctl::daemon::ManagerWrite>();
        w->kind = kind;
        w->name = std::move(name);
        return w;
    };
    auto items = write(mpctl::daemon::ManagerWrite::Kind::insert_items, "jobs");
    items->maxsize = 10;
    items->items = {{1, R"({"file":"a"})"}, {2, "2"}};
    auto set = write(mpctl::daemon::ManagerWrite::Kind::kv_set, "cfg");
    set->key = "mode";
    set->value = R"("fast")";
    set->version = 1;
    auto del = write(mpctl::daemon::ManagerWrite::Kind::kv_delete, "cfg");
    del->key = "gone";
    del->version = 2;
    bool written = false;
    store->write({items, set, del}, [&](Result<void> r) {
        REQUIRE(r);
        written = true;
    });
    REQUIRE(loop.run_until([&] { return written; }));
    store->stop();
}

}  // namespace

TEST_CASE("reading past a damaged run of keys resumes at the first key that reads",
          "[unit][store][recovery]") {
    FakeTable table;
    for (int64_t k = 1; k <= 1000; ++k) {
        table.keys.insert(k);
    }
    SECTION("a damaged page in the middle") {
        table.damaged = {{301, 340}};
        CHECK(mpctl::daemon::next_readable(301, std::ref(table)) == 341);
        CHECK(table.probes < 20);
    }
    SECTION("a damaged run of one key") {
        table.damaged = {{500, 500}};
        CHECK(mpctl::daemon::next_readable(500, std::ref(table)) == 501);
    }
    SECTION("damage up to the last key: reading goes on where the table ends") {
        table.damaged = {{900, 1000}};
        CHECK(mpctl::daemon::next_readable(900, std::ref(table)) == 1001);
    }
    SECTION("damage that every key falls in (the table's root page): nowhere") {
        table.damaged = {{1, k_max}};
        CHECK(mpctl::daemon::next_readable(1, std::ref(table)) == std::nullopt);
        CHECK(table.probes < 130);
    }
    SECTION("a failure at the largest key") {
        table.damaged = {{k_max, k_max}};
        CHECK(mpctl::daemon::next_readable(k_max, std::ref(table)) == std::nullopt);
    }
}

TEST_CASE("rows lost are counted up to the highest id the table can have held", "[unit][store][recovery]") {
    TableSalvage t;
    t.rejected = 2;
    t.unreadable = {{10, 19}, {500, k_max}};
    CHECK(t.lost(600) == 2 + 10 + 101);
    CHECK(t.lost(100) == 2 + 10);
}

TEST_CASE("a damaged journal's new name carries the UTC time, and a number when taken",
          "[unit][store][recovery]") {
    CHECK(mpctl::daemon::aside_name("/s/mpctld.db", 1795552626123) ==
          "/s/mpctld.db.corrupt-20261124T203706Z");
    CHECK(mpctl::daemon::aside_name("/s/mpctld.db", 1795552626123, 2) ==
          "/s/mpctld.db.corrupt-20261124T203706Z-2");
}

TEST_CASE("a journal damaged where no start-up read looks is refused at open, and left as it was",
          "[unit][store][recovery]") {
    mpctl::test::TempDir dir;
    const std::string path = dir / "mpctld.db";
    write_journal(path, 50);
    // The pools table: read whole at start, but a damaged one used to read as "no more rows".
    auto pages = mpctl::test::leaf_pages(path, "pools");
    REQUIRE(pages.size() == 1);
    mpctl::test::overwrite_page(path, pages.front());
    std::string damaged = mpctl::test::file_bytes(path);
    auto store = Store::open(path, Durability::normal);
    REQUIRE_FALSE(store);
    CHECK(store.error().code == mpctl::common::Errc::damaged);
    CHECK(store.error().message().find(path) != std::string::npos);
    CHECK(store.error().message().find("malformed") != std::string::npos);
    CHECK(mpctl::test::file_bytes(path) == damaged);
}

TEST_CASE("recovering a journal salvages the rows around a damaged page and keeps ids unique",
          "[unit][store][recovery]") {
    mpctl::test::TempDir dir;
    const std::string path = dir / "mpctld.db";
    write_journal(path, 400);
    auto pages = mpctl::test::leaf_pages(path, "tasks");
    REQUIRE(pages.size() >= 3);
    mpctl::test::overwrite_page(path, pages[pages.size() / 2]);
    std::string damaged = mpctl::test::file_bytes(path);

    auto report = mpctl::daemon::recover_journal(path, 1, 1795552626123);
    REQUIRE(report);
    CHECK(report->moved_to == path + ".corrupt-20261124T203706Z");
    CHECK(mpctl::test::file_bytes(report->moved_to) == damaged);
    REQUIRE(report->tasks.unreadable.size() == 1);
    const KeyRange lost = report->tasks.unreadable.front();
    CHECK(lost.first > 1);
    CHECK(lost.last < 400);
    CHECK(report->tasks.copied == 400 - (lost.last - lost.first + 1));
    CHECK(report->tasks.lost(report->next_task_id - 1) == lost.last - lost.first + 1);
    CHECK(report->pools.copied == 1);
    CHECK(report->next_task_id == 401);

    // The fresh journal opens as any other, with every task that was read, each as it was.
    auto store = open_store(path, Durability::normal);
    auto contents = store->load();
    REQUIRE(contents);
    CHECK(static_cast<int64_t>(contents->tasks.size()) == report->tasks.copied);
    for (const auto& t : contents->tasks) {
        CHECK((t.id < lost.first || t.id > lost.last));
        CHECK(t.spec.argv() == std::vector<std::string>{"echo", "task " + std::to_string(t.id)});
    }
    REQUIRE(contents->tasks.front().id == 1);
    CHECK(contents->tasks.front().pid == 4242);
    CHECK(contents->tasks.front().pid_start == 31337);
    CHECK(contents->pools.at("gpu").workers == 2);
    CHECK(contents->next_task_id == 401);
    // The segments' rows too, so that the start after takes back what still holds.
    CHECK(report->segments.copied == 2);
    CHECK(report->segments.rejected == 1);
    REQUIRE(contents->segments.size() == 2);
    CHECK(contents->segments[0].name == "kept");
    CHECK(contents->segments[0].lease.empty());
    CHECK(contents->segments[0].ino == 2);
    CHECK(contents->segments[1].name == "leased");
    CHECK(contents->segments[1].lease == "process");
    CHECK(contents->segments[1].pid == 42);
    CHECK(contents->segments[1].pid_start == 99);
    CHECK(contents->segments[1].mode == 0640);
    // The queues' values and the dicts' keys, with their order and versions.
    REQUIRE(contents->queues.size() == 1);
    CHECK(contents->queues[0].name == "jobs");
    CHECK(contents->queues[0].maxsize == 10);
    CHECK(contents->queues[0].items ==
          std::vector<std::pair<int64_t, std::string>>{{1, R"({"file":"a"})"}, {2, "2"}});
    REQUIRE(contents->dicts.size() == 1);
    CHECK(contents->dicts[0].version == 2);
    REQUIRE(contents->dicts[0].entries.size() == 1);
    CHECK(contents->dicts[0].entries[0].key == "mode");
    CHECK(contents->dicts[0].entries[0].value == R"("fast")");

    auto lines = mpctl::daemon::describe(*report);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] ==
          "moved the damaged journal " + path + " to " + report->moved_to + "; it is kept as it was");
    CHECK(lines[1].starts_with("salvaged " + std::to_string(report->tasks.copied) + " tasks (at most " +
                               std::to_string(lost.last - lost.first + 1) + " lost: ids " +
                               std::to_string(lost.first) + "-" + std::to_string(lost.last) +
                               " could not be read), 1 pool (none lost), 0 environments (none lost), 2 "
                               "shared-memory segments (1 lost), 2 queue values (none lost), 1 dict key "
                               "(none lost)"));
    CHECK(lines[2].starts_with("new tasks get ids from 401 on"));
}

TEST_CASE("a journal that is not a database is recovered as an empty one above the known ids",
          "[unit][store][recovery]") {
    mpctl::test::TempDir dir;
    const std::string path = dir / "mpctld.db";
    write_journal(path, 20);
    mpctl::test::overwrite_header(path);
    // Output files were seen up to id 57.
    auto report = mpctl::daemon::recover_journal(path, 58, 1795552626123);
    REQUIRE(report);
    CHECK(report->unreadable_schema == "file is not a database");
    CHECK(report->tasks.copied == 0);
    CHECK(report->next_task_id == 58);
    auto contents = open_store(path, Durability::normal)->load();
    REQUIRE(contents);
    CHECK(contents->tasks.empty());
    CHECK(contents->next_task_id == 58);
    CHECK(mpctl::daemon::describe(*report)[1] ==
          "nothing could be read from it (file is not a database): starting with an empty journal");

    // A second recovery in the same second takes the next free name.
    mpctl::test::overwrite_header(path);
    auto again = mpctl::daemon::recover_journal(path, 1, 1795552626123);
    REQUIRE(again);
    CHECK(again->moved_to == path + ".corrupt-20261124T203706Z-2");
    CHECK(again->next_task_id == 1);
}

TEST_CASE("a journal of an older schema is salvaged into this one, its missing columns at their defaults",
          "[unit][store][recovery]") {
    mpctl::test::TempDir dir;
    const std::string path = dir / "mpctld.db";
    // Schema version 1: no environments table, no env_id, outcome or transient column.
    raw_sql(path, std::string(k_schema_v1_tables) +
                      "INSERT INTO tasks (id, spec, state, submitted_at) VALUES"
                      " (7, '{\"argv\":[\"echo\",\"old\"],\"cwd\":\"/\"}', 'pending', 1000),"
                      " (8, 'not json', 'pending', 1000);"
                      "INSERT INTO pools VALUES ('gpu', 3);"
                      "PRAGMA user_version=1;");
    auto report = mpctl::daemon::recover_journal(path, 1, 1795552626123);
    REQUIRE(report);
    CHECK(report->tasks.copied == 1);
    CHECK(report->tasks.rejected == 1);  // the row whose spec does not parse
    CHECK(report->environments.absent);
    CHECK(report->pools.copied == 1);
    CHECK(report->next_task_id == 9);
    auto contents = open_store(path, Durability::normal)->load();
    REQUIRE(contents);
    REQUIRE(contents->tasks.size() == 1);
    CHECK(contents->tasks.front().spec.argv() == std::vector<std::string>{"echo", "old"});
    CHECK_FALSE(contents->pools.at("gpu").transient);
    CHECK(contents->next_task_id == 9);
}
