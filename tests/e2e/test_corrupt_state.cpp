// A damaged journal: a start refuses it, naming it and `mpctld --recover`, and changes nothing. The damage
// is real: pages of the journal's file overwritten, as found with
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
    for (const auto& s : d.mpctl_ndjson({"list"})) {
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

TEST_CASE("a damaged journal stops mpctld at start with a message naming it", "[e2e][corrupt-state]") {
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
    // Nothing was changed, and nothing was moved.
    CHECK(file_bytes(db) == damaged);
    CHECK(entries_starting(d.state_dir(), "mpctld.db.corrupt-").empty());
    // And again: a refusal does not wear the journal down.
    CHECK(start_expecting_failure(d).exit_code == 1);
    CHECK(file_bytes(db) == damaged);
}
