// mpctl map: its pool, task options, retries, --halt, the joblog, the progress bar, bad usage, and many
// items. Waits are on events with generous deadlines, never on bare sleeps.

#include <algorithm>
#include <set>
#include <signal.h>

#include <catch2/catch.hpp>

#include "map_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using namespace mpctl::test::e2e::map;
using Catch::Matchers::Contains;

TEST_CASE("map: the pool of its own is transient, gone once the map is done, and not remembered",
          "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    auto map = mpctl_in_background(
        d, {"map", "-j2", "--", "sh", "-c", sh_wait_for(t / "GO"), ":::", "a", "b"}, t / "out", t / "err");
    // While it runs, its pool is there, transient, sized -j.
    json pool;
    REQUIRE(eventually([&] {
        for (const auto& p : d.mpctl_ndjson({"pool", "list", "--json"})) {
            if (p["name"].get<std::string>().rfind("map-", 0) == 0) {
                pool = p;
                return p["running"] == 2;
            }
        }
        return false;
    }));
    CHECK(pool["transient"] == true);
    CHECK(pool["workers"] == 2);
    touch(t / "GO");
    auto r = map->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(eventually([&] { return pool_names(d) == std::vector<std::string>{"default"}; }));
    d.stop();
    d.start();
    CHECK(pool_names(d) == std::vector<std::string>{"default"});
}

TEST_CASE("map --pool runs in the given pool, -j defaulting to its size", "[e2e][map]") {
    DaemonFixture d;
    REQUIRE(d.mpctl({"pool", "set", "mine", "--workers", "3"}).exit_code == 0);
    auto objects = d.mpctl_ndjson({"map", "--pool", "mine", "--", "true", ":::", "a", "b", "c", "d"});
    REQUIRE(objects.size() == 4);
    for (const auto& o : objects) {
        CHECK(o["pool"] == "mine");
        CHECK(o["argv"].size() == 2);
    }
}

TEST_CASE("map passes task options to every task", "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    auto objects = d.mpctl_ndjson({"map", "--label", "batch=7", "--cwd", t.path(), "--env", "MAPVAR=v", "--",
                                   "sh", "-c", "echo $MAPVAR > \"$0\"", ":::", "f1", "f2"});
    REQUIRE(objects.size() == 2);
    for (const auto& o : objects) {
        // The user's label, and the map's own: the same for both tasks, naming this map.
        CHECK(o["labels"]["batch"] == "7");
        CHECK(o["labels"]["map"].get<std::string>().rfind("map-", 0) == 0);
        CHECK(o["labels"]["map"] == objects.front()["labels"]["map"]);
        CHECK(o["cwd"] == t.path());
    }
    // Over, the map is out of a plain list's way; --all and its label show it.
    CHECK(d.mpctl_ndjson({"list"}).empty());
    CHECK(d.mpctl_ndjson({"list", "--all"}).size() == 2);
    std::string label = "map=" + objects.front()["labels"]["map"].get<std::string>();
    CHECK(d.mpctl_ndjson({"list", "--label", label}).size() == 2);
    CHECK(slurp(t / "f1") == "v\n");
    CHECK(slurp(t / "f2") == "v\n");
}

TEST_CASE("map --retries retries a failed task", "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    ProcessOptions o;
    o.cwd = t.path();
    o.stdin_data = "a\nb\n";
    auto objects = d.mpctl_ndjson(
        {"map", "--retries", "2", "--", "sh", "-c", "if [ ! -e $0.seen ]; then touch $0.seen; exit 1; fi"},
        o);
    REQUIRE(objects.size() == 2);
    for (const auto& obj : objects) {
        CHECK(obj["state"] == "succeeded");
        CHECK(obj["attempts"] == 2);
    }
    auto r = d.mpctl({"map", "--", "sh", "-c", "exit 1", ":::", "x"});
    CHECK(r.exit_code == 1);
}

TEST_CASE("map --halt now,fail=N cancels the rest and stops the running ones", "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    std::vector<std::string> args{"map",
                                  "-j2",
                                  "--halt",
                                  "now,fail=1",
                                  "--json",
                                  "--",
                                  "sh",
                                  "-c",
                                  "if [ $0 = bad ]; then " + sh_wait_for(t / "started") +
                                      "; exit 3; fi; touch " + (t / "started") + "; exec sleep 300",
                                  ":::",
                                  "slow",
                                  "bad"};
    for (int i = 0; i < 20; ++i) {
        args.push_back("more" + std::to_string(i));
    }
    auto start = std::chrono::steady_clock::now();
    auto r = d.mpctl(args);
    INFO(r.err);
    CHECK(r.exit_code == 3);
    CHECK(std::chrono::steady_clock::now() - start < 100s);
    CHECK_THAT(r.err, Contains("halted"));
    CHECK(unfinished_tasks(d) == 0);
    // Every task but the failed one was cancelled: the pending ones, and the running ones were stopped.
    auto lines = lines_of(r.out);
    CHECK_FALSE(lines.empty());
    for (const auto& line : lines) {
        json o = json::parse(line);
        INFO(line);
        if (o["argv"][3] == "bad") {
            CHECK(o["state"] == "failed");
            CHECK(o["exit_code"] == 3);
        } else {
            CHECK(o["state"] == "cancelled");
        }
    }
}

TEST_CASE("map --halt soon,fail=N starts no more but lets the running ones finish", "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    std::vector<std::string> args{"map",
                                  "-j2",
                                  "--halt",
                                  "soon,fail=1",
                                  "--",
                                  "sh",
                                  "-c",
                                  "case $0 in slow) " + sh_wait_for(t / "bad-done") +
                                      "; sleep 0.2; echo slow-finished;; bad) touch " + (t / "bad-done") +
                                      "; exit 4;; *) sleep 1; echo ran-$0;; esac",
                                  ":::",
                                  "slow",
                                  "bad"};
    for (int i = 0; i < 20; ++i) {
        args.push_back("more" + std::to_string(i));
    }
    auto r = d.mpctl(args);
    INFO(r.err);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.out, Contains("slow-finished"));
    CHECK(lines_of(r.out).size() < 5);  // not all 20 others ran
    CHECK(unfinished_tasks(d) == 0);
    CHECK(d.mpctl({"map", "--halt", "sometimes", "--", "true", ":::", "x"}).exit_code == 2);
}

TEST_CASE("map --joblog writes a header and one TSV line per task", "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    std::string log = t / "jobs.tsv";
    auto r = d.mpctl({"map", "--joblog", log, "--", "sh", "-c", "exit $0", ":::", "0", "2", "0"});
    CHECK(r.exit_code == 2);
    auto lines = lines_of(slurp(log));
    REQUIRE(lines.size() == 4);
    CHECK(lines[0] == "Seq\tId\tExitval\tSignal\tStarttime\tJobRuntime\tCommand");
    std::set<std::string> seqs;
    std::regex row(R"(^(\d+)\t(\d+)\t(-?\d+)\t(\d+)\t(\d+\.\d{3})\t(\d+\.\d{3})\t(.*)$)");
    for (size_t i = 1; i < lines.size(); ++i) {
        std::smatch m;
        INFO(lines[i]);
        REQUIRE(std::regex_match(lines[i], m, row));
        seqs.insert(m[1]);
        std::string expected_exit = m[1] == "2" ? "2" : "0";
        CHECK(m[3] == expected_exit);
        CHECK(m[4] == "0");
        double start = std::stod(m[5]);
        CHECK(start > 1.6e9);
        CHECK(m[7] == "sh -c 'exit $0' " + std::string(m[1] == "2" ? "2" : "0"));
        int64_t id = std::stoll(m[2]);
        CHECK(d.status(id)["exit_code"] == std::stoi(m[3]));
    }
    CHECK(seqs == std::set<std::string>{"1", "2", "3"});
}

TEST_CASE("map shows a progress bar with --progress and none with --no-progress or off a terminal",
          "[e2e][map]") {
    DaemonFixture d;
    auto p = d.mpctl({"map", "--progress", "--", "true", ":::", "a", "b", "c"});
    CHECK(p.exit_code == 0);
    CHECK_THAT(p.err, Contains("3/3"));
    CHECK_THAT(p.err, Contains("ETA"));
    CHECK(p.out.empty());
    auto q = d.mpctl({"map", "--progress", "--", "true"}, with_stdin("a\nb\n"));
    CHECK(q.exit_code == 0);
    CHECK_THAT(q.err, Contains("/s"));
    auto n = d.mpctl({"map", "--progress", "--no-progress", "--", "true", ":::", "a"});
    CHECK(n.err.empty());
    auto plain = d.mpctl({"map", "--", "true", ":::", "a"});
    CHECK(plain.err.empty());
}

TEST_CASE("map refuses bad usage with exit code 2", "[e2e][map]") {
    DaemonFixture d;
    CHECK(d.mpctl({"map", "--", ":::", "a"}).exit_code == 2);
    CHECK(d.mpctl({"map", "-j", "0", "--", "echo", ":::", "a"}).exit_code == 2);
    CHECK(d.mpctl({"map", "--colsep", "", "--", "echo", ":::", "a"}).exit_code == 2);
    CHECK(d.mpctl({"map", "--stdin", "-", "--", "cat", ":::", "a"}).exit_code == 2);
}

TEST_CASE("map runs ten thousand items quickly and in order", "[e2e][map]") {
    DaemonFixture d(DaemonOptions{4, {}, {}, {}});
    std::string input;
    for (int i = 1; i <= 10000; ++i) {
        input += std::to_string(i) + "\n";
    }
    // How fast is bench_map.py's to say; here a loaded machine (sanitizers, other builds) gets as long as
    // ctest gives the test. (Under a load average of 11 it took more than the default 120 s.)
    auto options = with_stdin(input);
    options.timeout = std::chrono::seconds(280);
    auto r = d.mpctl({"map", "-j4", "--", "echo"}, options);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_FALSE(r.timed_out);
    CHECK(r.out == input);
    CHECK(unfinished_tasks(d) == 0);
}
