// Durable before acknowledged: kill -9 the daemon, start it again on the same state dir, and every id a
// submit returned is still there; queued tasks run, the ones that were running are failed/lost, and ids
// are never reused.

#include <algorithm>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;

TEST_CASE(
    "after kill -9 and a restart every acknowledged task exists, queued ones run, running ones are lost",
    "[e2e][durability]") {
    DaemonFixture d(DaemonOptions{2, {}, {}});
    TempDir t;
    GroupReaper reaper;  // the tasks running at the kill are orphaned: they must not outlive the test
    REQUIRE(d.mpctl({"pool", "set", "q", "--workers", "1"}).exit_code == 0);

    // Running at the kill: one in the default pool, one holding pool q's only slot. They block until the
    // test ends (or is reaped), so they are certainly running when the daemon dies.
    int64_t long_default = d.submit({"--", "sh", "-c", sh_wait_for(t / "STOP")});
    int64_t long_q = d.submit({"--pool", "q", "--", "sh", "-c", sh_wait_for(t / "STOP")});
    std::vector<int64_t> queued;
    for (int i = 0; i < 12; ++i) {
        queued.push_back(d.submit({"--pool", "q", "--name", "q" + std::to_string(i), "--", "touch",
                                   t / ("ran" + std::to_string(i))}));
    }
    for (int64_t id : {long_default, long_q}) {
        json s = d.wait_for_state(id, "running");
        REQUIRE(s["pid"].is_number_integer());
        reaper.add(s["pid"].get<pid_t>());
    }
    CHECK(d.status(queued.front())["state"] == "pending");

    d.kill9();
    REQUIRE_FALSE(d.running());
    touch(t / "STOP");  // the orphans end now; their outcome is unknown to the daemon
    d.start();

    for (int64_t id : {long_default, long_q}) {
        json s = d.status(id);
        INFO(s.dump());
        CHECK(s["state"] == "failed");
        CHECK(s["reason"] == "lost");
        CHECK(s["pid"].is_null());
        CHECK(d.mpctl({"wait", str(id)}).exit_code == 125);
    }
    std::vector<std::string> wait_args{"wait"};
    for (int64_t id : queued) {
        wait_args.push_back(str(id));
    }
    CHECK(d.mpctl(wait_args).exit_code == 0);
    for (size_t i = 0; i < queued.size(); ++i) {
        json s = d.status(queued[i]);
        CHECK(s["state"] == "succeeded");
        CHECK(s["name"] == "q" + std::to_string(i));
        CHECK(exists(t / ("ran" + std::to_string(i))));
    }

    // Ids are never reused: the next one is above every earlier one.
    int64_t highest = std::max({long_default, long_q, *std::max_element(queued.begin(), queued.end())});
    int64_t next = d.submit({"--", "true"});
    CHECK(next > highest);
    CHECK(d.mpctl_ndjson({"list"}).size() == queued.size() + 3);
}

TEST_CASE("every id a submit returned survives a kill -9 right after it", "[e2e][durability]") {
    DaemonFixture d(DaemonOptions{1, {}, {}});
    TempDir t;
    GroupReaper reaper;
    // One slot, held: everything else stays queued.
    int64_t blocker = d.submit({"--", "sh", "-c", sh_wait_for(t / "STOP")});
    std::vector<int64_t> ids;
    for (int i = 0; i < 25; ++i) {
        ids.push_back(d.submit({"--label", "n=" + std::to_string(i), "--", "true"}));
    }
    json b = d.wait_for_state(blocker, "running");
    reaper.add(b["pid"].get<pid_t>());
    d.kill9();
    touch(t / "STOP");
    d.start();

    CHECK(d.status(blocker)["reason"] == "lost");
    for (size_t i = 0; i < ids.size(); ++i) {
        auto r = d.mpctl({"wait", str(ids[i])});
        INFO("task " << ids[i] << ": " << r.err);
        CHECK(r.exit_code == 0);
        CHECK(d.status(ids[i])["labels"]["n"] == std::to_string(i));
    }
    int64_t next = d.submit({"--", "true"});
    CHECK(next > ids.back());
}

TEST_CASE("ids are not reused after a clean restart nor after a kill -9", "[e2e][durability]") {
    DaemonFixture d;
    int64_t first = d.submit({"--", "true"});
    d.wait_for_state(first, "succeeded");
    CHECK(d.stop() == 0);
    d.start();
    int64_t second = d.submit({"--", "true"});
    CHECK(second > first);
    // Killed right after a submit: whether that task ran or was lost, its id stays taken.
    d.kill9();
    d.start();
    int64_t third = d.submit({"--", "true"});
    CHECK(third > second);
    CHECK(d.mpctl({"wait", str(first), str(third)}).exit_code == 0);
    json s = d.status(second);
    CHECK(s["id"] == second);
    CHECK(s["argv"] == json::array({"true"}));
    CHECK(d.mpctl({"wait", str(second)}).exit_code != 4);
}

TEST_CASE("pool sizes set with pool set survive a kill -9", "[e2e][durability]") {
    DaemonFixture d(DaemonOptions{4, {}, {}});
    TempDir t;
    REQUIRE(d.mpctl({"pool", "set", "kept", "--workers", "1"}).exit_code == 0);
    d.kill9();
    d.start();
    // Each task needs the other running: with the one slot that survived, the second one waits.
    int64_t a =
        d.submit({"--pool", "kept", "--", "sh", "-c", "touch " + (t / "A") + "; " + sh_wait_for(t / "B")});
    int64_t b =
        d.submit({"--pool", "kept", "--", "sh", "-c", "touch " + (t / "B") + "; " + sh_wait_for(t / "A")});
    REQUIRE(wait_for_file(t / "A"));
    CHECK(d.status(b)["state"] == "pending");
    bool found = false;
    for (const auto& p : d.mpctl_ndjson({"pool", "list"})) {
        if (p["name"] == "kept") {
            found = true;
            CHECK(p["workers"] == 1);
            CHECK(p["running"] == 1);
            CHECK(p["pending"] == 1);
        }
    }
    CHECK(found);
    REQUIRE(d.mpctl({"pool", "set", "kept", "--workers", "2"}).exit_code == 0);
    CHECK(d.mpctl({"wait", str(a), str(b)}).exit_code == 0);
}

TEST_CASE("pool list still shows a pool sized with pool set after a restart", "[e2e][durability]") {
    DaemonFixture d;
    REQUIRE(d.mpctl({"pool", "set", "kept", "--workers", "7"}).exit_code == 0);
    CHECK(d.stop() == 0);
    d.start();
    json kept;
    for (const auto& p : d.mpctl_ndjson({"pool", "list"})) {
        if (p["name"] == "kept") {
            kept = p;
        }
    }
    INFO("pool list after the restart has no pool 'kept'");
    REQUIRE(kept.is_object());
    CHECK(kept["workers"] == 7);
}
