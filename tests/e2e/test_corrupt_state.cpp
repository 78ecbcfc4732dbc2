// A damaged journal: a start refuses it, naming it and `mpctld --recover`, and changes nothing; --recover
// moves it aside under a UTC timestamp, salvages what SQLite can still read, and starts; on a sound journal
// --recover changes nothing. The damage is real: pages of the journal's file overwritten, as found with
// SQLite's dbstat table (tests/support/journal_damage.hpp).

#include <dirent.h>
#include <map>
#include <regex>
#include <set>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"
#include "journal_damage.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

// The names in DIR that start with PREFIX.
std::vector<std::string> entries_starting(const std::string& dir, const std::string& prefix) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name.starts_with(prefix)) {
                names.push_back(name);
            }
        }
        ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
}

// Runs N `true` tasks through one `mpctl map` (one process, not N submits); returns each task's id and its
// item, from `mpctl list`.
std::map<int64_t, std::string> run_tasks(const DaemonFixture& d, int n) {
    std::vector<std::string> args{"map", "-j2", "--no-progress", "--", "true", ":::"};
    for (int i = 1; i <= n; ++i) {
        args.push_back("item" + std::to_string(i));
    }
    auto r = d.mpctl(args);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    std::map<int64_t, std::string> items;
    for (const auto& s : d.mpctl_ndjson({"list", "--all"})) {
        if (s["argv"].size() == 2 && s["argv"][0] == "true") {
            items[s["id"].get<int64_t>()] = s["argv"][1].get<std::string>();
        }
    }
    REQUIRE(items.size() == static_cast<size_t>(n));
    return items;
}

// A start of mpctld on D's state dir that is expected to fail: its exit code and what it printed.
ProcessResult start_expecting_failure(const DaemonFixture& d, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{mpctld_bin(), "--foreground", "--exit-with-parent", "--socket",
                                  d.socket(),   "--state-dir",  d.state_dir()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv);
}

// The tasks journal page in the middle of the file: tasks before and after it survive.
int64_t middle_tasks_page(const std::string& db) {
    auto pages = leaf_pages(db, "tasks");
    REQUIRE(pages.size() >= 3);
    return pages[pages.size() / 2];
}

}  // namespace

TEST_CASE("a damaged journal stops mpctld at start with a message naming it and --recover",
          "[e2e][corrupt-state]") {
    DaemonFixture d;
    run_tasks(d, 300);
    REQUIRE(d.stop() == 0);
    const std::string db = d.state_dir() + "/mpctld.db";
    checkpoint_journal(db);

    // Where the damage is decides who finds it: the header (SQLite at the first statement), a page of the
    // tasks table (the start-up read finds it too), and the environments table, which the start-up reads
    // only by point lookups: without the integrity check at open, that start went on, and wrote to it.
    std::string where = GENERATE(as<std::string>{}, "header", "tasks", "environments");
    std::string said = "database disk image is malformed";
    if (where == "header") {
        overwrite_header(db);
        said = "file is not a database";
    } else if (where == "tasks") {
        overwrite_page(db, middle_tasks_page(db));
    } else {
        auto pages = leaf_pages(db, "environments");
        REQUIRE_FALSE(pages.empty());
        overwrite_page(db, pages.front());
    }
    INFO("damaged: " << where);
    std::string damaged = file_bytes(db);

    auto r = start_expecting_failure(d);
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains(db));
    CHECK_THAT(r.err, Contains(said));
    CHECK_THAT(r.err, Contains("nothing was changed"));
    CHECK_THAT(r.err, Contains("mpctld --recover"));
    // Nothing was changed, and nothing was moved.
    CHECK(file_bytes(db) == damaged);
    CHECK(entries_starting(d.state_dir(), "mpctld.db.corrupt-").empty());
    // And again: a refusal does not wear the journal down.
    CHECK(start_expecting_failure(d).exit_code == 1);
    CHECK(file_bytes(db) == damaged);
}

TEST_CASE("mpctld --recover moves a damaged journal aside with a timestamp and starts",
          "[e2e][corrupt-state]") {
    DaemonFixture d;
    auto items = run_tasks(d, 20);
    int64_t highest = items.rbegin()->first;
    REQUIRE(d.stop() == 0);
    const std::string db = d.state_dir() + "/mpctld.db";
    checkpoint_journal(db);
    overwrite_header(db);
    std::string damaged = file_bytes(db);

    d.start({"--recover"});
    auto aside = entries_starting(d.state_dir(), "mpctld.db.corrupt-");
    INFO(d.log());
    REQUIRE(aside.size() >= 1);
    // mpctld.db.corrupt-20261202T153000Z, its -wal and -shm beside it
    CHECK(std::regex_match(aside.front(), std::regex(R"(mpctld\.db\.corrupt-\d{8}T\d{6}Z)")));
    CHECK(file_bytes(d.state_dir() + "/" + aside.front()) == damaged);
    for (size_t i = 1; i < aside.size(); ++i) {
        CHECK((aside[i] == aside.front() + "-wal" || aside[i] == aside.front() + "-shm"));
    }
    std::string log = d.log();
    CHECK_THAT(log, Contains("warning --recover: moved the damaged journal " + db + " to " + d.state_dir() +
                             "/" + aside.front()));
    CHECK_THAT(log, Contains("nothing could be read from it (file is not a database)"));

    // It serves, from an empty journal, and hands out no id an old task had: their output files remain.
    CHECK(d.mpctl_ndjson({"list", "--all"}).empty());
    int64_t next = d.submit({"--", "true"});
    CHECK(next > highest);
    CHECK(d.mpctl({"wait", str(next)}).exit_code == 0);
    // The next start is an ordinary one.
    REQUIRE(d.stop() == 0);
    d.start();
    CHECK(d.status(next)["state"] == "succeeded");
}

TEST_CASE("mpctld --recover salvages the tasks it can read", "[e2e][corrupt-state]") {
    DaemonFixture d;
    TempDir t;
    GroupReaper reaper;  // the task running at the kill is orphaned: it must not outlive the test
    REQUIRE(d.mpctl({"pool", "set", "q", "--workers", "1"}).exit_code == 0);
    auto items = run_tasks(d, 300);
    // Running at the crash, and queued behind it.
    int64_t running = d.submit({"--pool", "q", "--", "sh", "-c", sh_wait_for(t / "STOP")});
    int64_t queued = d.submit({"--pool", "q", "--", "touch", t / "queued-ran"});
    json s = d.wait_for_state(running, "running");
    reaper.add(s["pid"].get<pid_t>());
    d.sync_journal("q", 1);
    d.kill9();
    touch(t / "STOP");
    reap_orphan(s["pid"].get<pid_t>());  // ended unrecorded while no daemon ran: lost
    const std::string db = d.state_dir() + "/mpctld.db";
    checkpoint_journal(db);
    overwrite_page(db, middle_tasks_page(db));

    d.start({"--recover"});
    std::string log = d.log();
    INFO(log);
    std::smatch m;
    REQUIRE(std::regex_search(
        log, m,
        std::regex(R"(--recover: salvaged (\d+) tasks \(at most (\d+) lost: ids (\d+)-(\d+) )"
                   R"(could not be read\), 1 pool \(none lost\))")));
    int64_t salvaged = std::stoll(m[1]);
    int64_t first_lost = std::stoll(m[3]);
    int64_t last_lost = std::stoll(m[4]);
    CHECK(std::stoll(m[2]) == last_lost - first_lost + 1);
    CHECK(first_lost > items.begin()->first);
    CHECK(last_lost < items.rbegin()->first);
    CHECK(salvaged == static_cast<int64_t>(items.size()) + 2 - (last_lost - first_lost + 1));

    // What was read is there as it was; what was not is unknown, not mangled.
    std::set<int64_t> listed;
    for (const auto& task : d.mpctl_ndjson({"list", "--all"})) {
        listed.insert(task["id"].get<int64_t>());
        if (auto it = items.find(task["id"].get<int64_t>()); it != items.end()) {
            CHECK(task["argv"] == json::array({"true", it->second}));
            CHECK(task["state"] == "succeeded");
        }
    }
    CHECK(static_cast<int64_t>(listed.size()) == salvaged);
    for (const auto& [id, item] : items) {
        bool lost = id >= first_lost && id <= last_lost;
        CHECK(listed.contains(id) == !lost);
    }
    CHECK(d.mpctl({"status", str(first_lost)}).exit_code == 4);

    // The crash's rules still hold: the running task is lost, the queued one runs in its salvaged pool.
    json r = d.status(running);
    CHECK(r["state"] == "failed");
    CHECK(r["reason"] == "lost");
    CHECK(d.mpctl({"wait", str(queued)}).exit_code == 0);
    CHECK(exists(t / "queued-ran"));
    bool pool_kept = false;
    for (const auto& p : d.mpctl_ndjson({"pool", "list"})) {
        pool_kept = pool_kept || (p["name"] == "q" && p["workers"] == 1);
    }
    CHECK(pool_kept);
    // Ids are never reused, the lost ones included.
    CHECK(d.submit({"--", "true"}) > queued);
}

TEST_CASE("mpctld --recover on a sound journal changes nothing", "[e2e][corrupt-state]") {
    DaemonFixture d;
    auto items = run_tasks(d, 30);
    REQUIRE(d.mpctl({"pool", "set", "kept", "--workers", "3"}).exit_code == 0);
    REQUIRE(d.stop() == 0);

    d.start({"--recover"});
    std::string log = d.log();
    INFO(log);
    CHECK_THAT(log, Contains("--recover: the journal " + d.state_dir() +
                             "/mpctld.db is sound; nothing was changed"));
    CHECK_FALSE(log.find("moved the damaged journal") != std::string::npos);
    CHECK(entries_starting(d.state_dir(), "mpctld.db.").empty());
    auto listed = d.mpctl_ndjson({"list", "--all"});
    CHECK(listed.size() == items.size());
    for (const auto& task : listed) {
        CHECK(items.at(task["id"].get<int64_t>()) == task["argv"][1]);
    }
    bool pool_kept = false;
    for (const auto& p : d.mpctl_ndjson({"pool", "list"})) {
        pool_kept = pool_kept || (p["name"] == "kept" && p["workers"] == 3);
    }
    CHECK(pool_kept);
}
