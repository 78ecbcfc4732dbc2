// mpctl map: items after ::: or from stdin, placeholders and quoting, ordering, every option, halt, the
// joblog, many items, and Ctrl-C. Waits are on events with generous deadlines, never on bare sleeps.

#include <algorithm>
#include <set>
#include <signal.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) {
        out += l + "\n";
    }
    return out;
}

ProcessOptions with_stdin(std::string data, std::string cwd = {}) {
    ProcessOptions o;
    o.stdin_data = std::move(data);
    o.cwd = std::move(cwd);
    return o;
}

// The map's tasks that are still pending or running, seen by the daemon.
size_t unfinished_tasks(const DaemonFixture& d) {
    return d.mpctl_ndjson({"list", "--state", "pending"}).size() +
           d.mpctl_ndjson({"list", "--state", "running"}).size();
}

std::string shell_quote_for_test(const std::string& word) {
    std::string out = "'";
    for (char c : word) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

// The names of the daemon's pools (a map's own pool is there while it runs).
std::vector<std::string> pool_names(const DaemonFixture& d) {
    std::vector<std::string> names;
    for (const auto& p : d.mpctl_ndjson({"pool", "list", "--json"})) {
        names.push_back(p["name"].get<std::string>());
    }
    return names;
}

// Starts `mpctl map ARGS` (output to T/out and T/err) and waits until RUNNING of its tasks run and PENDING
// wait: the state in which the tests below stop the map or the daemon.
std::unique_ptr<BackgroundProcess> start_map_and_wait(const DaemonFixture& d, const TempDir& t,
                                                      const std::vector<std::string>& args, size_t running,
                                                      size_t pending) {
    auto bg = mpctl_in_background(d, args, t / "out", t / "err");
    REQUIRE(eventually(
        [&] {
            return d.mpctl_ndjson({"list", "--state", "running"}).size() == running &&
                   d.mpctl_ndjson({"list", "--state", "pending"}).size() == pending;
        },
        60s));
    return bg;
}

// `mpctl map -j2 -- sleep ::: PREFIX1 ... PREFIX10`: sleeps whose command lines no other process has.
std::vector<std::string> sleep_map_args(const std::string& prefix) {
    std::vector<std::string> args{"map", "-j2", "--", "sleep", ":::"};
    for (int i = 1; i <= 10; ++i) {
        args.push_back(prefix + std::to_string(i));
    }
    return args;
}

// Processes whose command line matches PATTERN (pgrep -f).
bool processes_matching(const std::string& pattern) {
    auto r = run_process({"pgrep", "-f", pattern});
    return r.exit_code == 0;
}

}  // namespace

TEST_CASE("map runs the command once per item after ::: and prints in input order", "[e2e][map]") {
    DaemonFixture d;
    auto r = d.mpctl({"map", "--", "echo", "item:", ":::", "a", "b", "c"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "item: a\nitem: b\nitem: c\n");
    CHECK(r.err.empty());
}

TEST_CASE("map reads one item per stdin line, the last one without a newline too", "[e2e][map]") {
    DaemonFixture d;
    auto r = d.mpctl({"map", "--", "echo", "[{}]"}, with_stdin("x\n\ny z\nlast"));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "[x]\n[]\n[y z]\n[last]\n");
}

TEST_CASE("map of no items does nothing and succeeds", "[e2e][map]") {
    DaemonFixture d;
    auto r = d.mpctl({"map", "--", "echo"}, with_stdin(""));
    CHECK(r.exit_code == 0);
    CHECK(r.out.empty());
    auto r2 = d.mpctl({"map", "--", "echo", ":::"});
    CHECK(r2.exit_code == 0);
    CHECK(r2.out.empty());
}

TEST_CASE("map keeps input order under random sleeps and --unordered prints in completion order",
          "[e2e][map]") {
    DaemonFixture d;
    // Shuffled sleeps: in completion order the items would come out mixed up.
    const char* sleeps[] = {"0.08", "0.02", "0.06", "0", "0.07", "0.01", "0.05", "0.03", "0.04", "0"};
    std::vector<std::string> items;
    std::vector<std::string> order;
    for (int i = 0; i < 10; ++i) {
        items.push_back(std::string(sleeps[i]) + " item" + std::to_string(i));
        order.push_back("item" + std::to_string(i));
    }
    auto r = d.mpctl({"map", "-j4", "--", "sh", "-c", "sleep $0; echo $1", "{1}", "{2}"},
                     with_stdin(joined(items)));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == joined(order));

    // --unordered: "first" can only finish after "second" has, so it must be printed after it.
    TempDir t;
    std::string script =
        "if [ $0 = first ]; then " + sh_wait_for(t / "GO") + "; fi; echo $0; touch " + (t / "GO");
    auto u = d.mpctl({"map", "-j2", "--unordered", "--", "sh", "-c", script, ":::", "first", "second"});
    INFO(u.err);
    CHECK(u.exit_code == 0);
    CHECK(u.out == "second\nfirst\n");
    // The same without --unordered: input order.
    ::unlink((t / "GO").c_str());
    auto o = d.mpctl({"map", "-j2", "--", "sh", "-c", script, ":::", "first", "second"});
    CHECK(o.exit_code == 0);
    CHECK(o.out == "first\nsecond\n");
}

TEST_CASE("map prints each task's stdout and stderr whole, to mpctl's stdout and stderr", "[e2e][map]") {
    DaemonFixture d;
    auto r = d.mpctl({"map", "-j3", "--", "sh", "-c",
                      "for i in 1 2 3; do echo $0-out$i; echo $0-err$i >&2; sleep 0.01; done", ":::", "a",
                      "b", "c"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "a-out1\na-out2\na-out3\nb-out1\nb-out2\nb-out3\nc-out1\nc-out2\nc-out3\n");
    CHECK(r.err == "a-err1\na-err2\na-err3\nb-err1\nb-err2\nb-err3\nc-err1\nc-err2\nc-err3\n");
}

TEST_CASE("map passes items with spaces, quotes, $, ; and backslashes byte for byte", "[e2e][map]") {
    DaemonFixture d;
    std::vector<std::string> items{"a b",    "it's",   "\"dq\"", "$HOME",  "a;b",     "back\\slash",
                                   "`date`", "$(id)",  "*",      "  lead", "tab\tin", "\\'\"$;",
                                   "{}{1}",  "--flag", "-n",     "~",      "a|b&c",   "#x"};
    SECTION("without --shell, from stdin") {
        auto r = d.mpctl({"map", "--", "printf", "%s\\n", "{}"}, with_stdin(joined(items)));
        INFO(r.err);
        CHECK(r.exit_code == 0);
        CHECK(r.out == joined(items));
    }
    SECTION("without --shell, after :::, by the append rule") {
        std::vector<std::string> args{"map", "--", "printf", "%s\\n", ":::"};
        args.insert(args.end(), items.begin(), items.end());
        args.push_back("new\nline");
        auto r = d.mpctl(args);
        CHECK(r.exit_code == 0);
        CHECK(r.out == joined(items) + "new\nline\n");
    }
    SECTION("with --shell, substituted items are quoted") {
        auto r = d.mpctl({"map", "--shell", "--", "printf '%s\\n' {}; printf '<%s>\\n' {}"},
                         with_stdin(joined(items)));
        INFO(r.err);
        CHECK(r.exit_code == 0);
        std::string expected;
        for (const auto& it : items) {
            expected += it + "\n<" + it + ">\n";
        }
        CHECK(r.out == expected);
    }
    SECTION("with --shell and the append rule") {
        std::vector<std::string> args{"map", "--shell", "--", "printf '%s\\n'", ":::"};
        args.insert(args.end(), items.begin(), items.end());
        auto r = d.mpctl(args);
        CHECK(r.exit_code == 0);
        CHECK(r.out == joined(items));
    }
}

TEST_CASE("map splits columns {1} {2} at whitespace or --colsep", "[e2e][map]") {
    DaemonFixture d;
    auto r = d.mpctl({"map", "--", "echo", "{2}", "{1}"}, with_stdin("a  b\nc\td\n"));
    CHECK(r.exit_code == 0);
    CHECK(r.out == "b a\nd c\n");
    auto c =
        d.mpctl({"map", "--colsep", ",", "--", "echo", "{2}+{1}", "{3}."}, with_stdin("a b,c d\nx,,z\n"));
    CHECK(c.exit_code == 0);
    CHECK(c.out == "c d+a b .\n+x z.\n");
}

TEST_CASE("map --chunksize gives each task up to N items as arguments", "[e2e][map]") {
    DaemonFixture d;
    auto r = d.mpctl({"map", "--chunksize", "3", "--", "echo", ":::", "1", "2", "3", "4", "5", "6", "7"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "1 2 3\n4 5 6\n7\n");
    auto s = d.mpctl({"map", "--chunksize", "2", "--", "echo", "<", "{}", ">"}, with_stdin("a\nb c\nd\n"));
    CHECK(s.exit_code == 0);
    CHECK(s.out == "< a b c >\n< d >\n");
    auto bad = d.mpctl({"map", "--chunksize", "2", "--", "echo", "{1}", ":::", "a"});
    CHECK(bad.exit_code == 2);
}

TEST_CASE("map -j bounds how many of its tasks run at once", "[e2e][map]") {
    DaemonFixture d(DaemonOptions{8, {}, {}, {}});
    TempDir t;
    ::mkdir((t / "run").c_str(), 0700);
    // Each task counts the tasks running beside it (itself included) while it runs.
    std::string script = "touch run/$0; ls run | wc -l >> counts; sleep 0.05; rm run/$0";
    std::vector<std::string> args{"map", "-j", "2", "--", "sh", "-c", script, ":::"};
    for (int i = 0; i < 12; ++i) {
        args.push_back("t" + std::to_string(i));
    }
    ProcessOptions o;
    o.cwd = t.path();
    auto r = d.mpctl(args, o);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    auto counts = lines_of(slurp(t / "counts"));
    REQUIRE(counts.size() == 12);
    for (const auto& c : counts) {
        int n = std::atoi(c.c_str());
        CHECK(n >= 1);
        CHECK(n <= 2);
    }
    // Two of them can run at once: each waits for the other to have started.
    auto gate = d.mpctl({"map", "-j2", "--colsep", " ", "--", "sh", "-c",
                         "touch \"$0\"; " + std::string("while [ ! -e \"$1\" ]; do sleep 0.01; done"), "{1}",
                         "{2}", ":::", t / "A" + " " + t / "B", t / "B" + " " + t / "A"});
    CHECK(gate.exit_code == 0);
}

TEST_CASE("map exits like wait on several tasks: the first unsuccessful one in input order", "[e2e][map]") {
    DaemonFixture d;
    auto ok = d.mpctl({"map", "--", "sh", "-c", "exit $0", ":::", "0", "0"});
    CHECK(ok.exit_code == 0);
    // 5 comes first in input order, though it finishes last.
    auto r = d.mpctl({"map", "-j3", "--", "sh", "-c", "sleep $1; exit $0", "{1}", "{2}"},
                     with_stdin("0 0\n5 0.3\n3 0\n"));
    CHECK(r.exit_code == 5);
    auto missing = d.mpctl({"map", "--", "no-such-command-mpctl-map", ":::", "x"});
    CHECK(missing.exit_code == 127);
    auto killed = d.mpctl({"map", "--", "sh", "-c", "kill -9 $$", ":::", "x"});
    CHECK(killed.exit_code == 128 + 9);
}

TEST_CASE("map --json prints one status object per task in input order", "[e2e][map]") {
    DaemonFixture d;
    auto objects = d.mpctl_ndjson({"map", "-j3", "--", "sh", "-c", "sleep $0", ":::", "0.2", "0", "0.1"});
    REQUIRE(objects.size() == 3);
    std::vector<std::string> sleeps;
    for (const auto& o : objects) {
        CHECK(o["state"] == "succeeded");
        CHECK(o["exit_code"] == 0);
        sleeps.push_back(o["argv"][3].get<std::string>());
    }
    CHECK(sleeps == std::vector<std::string>{"0.2", "0", "0.1"});
    auto ids = ids_of(objects);
    CHECK(std::is_sorted(ids.begin(), ids.end()));
    CHECK(objects[0]["pool"].get<std::string>().rfind("map-", 0) == 0);
}

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
        CHECK(o["labels"] == json{{"batch", "7"}});
        CHECK(o["cwd"] == t.path());
    }
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
    auto r = d.mpctl({"map", "-j4", "--", "echo"}, with_stdin(input));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_FALSE(r.timed_out);
    CHECK(r.out == input);
    CHECK(unfinished_tasks(d) == 0);
}

TEST_CASE(
    "map streams its input: results print before stdin ends, and only a window of it is read and "
    "submitted",
    "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    {
        // The second line is written only once the first one's result has been printed.
        std::string script =
            "{ echo first; while [ ! -e \"$2\" ]; do sleep 0.01; done; echo second; } | "
            "\"$1\" map -- echo";
        auto bg = spawn_to_files({"sh", "-c", script, "sh", mpctl_bin(), t / "GO"}, d.client_options(),
                                 t / "out1", t / "err1");
        REQUIRE(eventually([&] { return slurp(t / "out1") == "first\n"; }, 60s));
        touch(t / "GO");
        auto r = bg->wait(60s);
        REQUIRE(r);
        INFO(slurp(t / "err1"));
        CHECK(r->exit_code == 0);
        CHECK(slurp(t / "out1") == "first\nsecond\n");
    }
    {
        // A million lines behind a task that blocks: the map reads and submits a window of them, and
        // the writer stays blocked on the full pipe instead of being read to the end.
        REQUIRE(run_process({"mkfifo", t / "in"}).exit_code == 0);
        std::string script =
            "seq 1000003 > \"$2\" & exec \"$1\" map -j1 -- sh -c "
            "'if [ \"$1\" = 1 ]; then while [ ! -e \"$0\" ]; do sleep 0.01; done; fi' " +
            shell_quote_for_test(t / "GO2") + " < \"$2\"";
        auto bg = spawn_to_files({"sh", "-c", script, "sh", mpctl_bin(), t / "in"}, d.client_options(),
                                 t / "out2", t / "err2");
        auto tasks_of_this_map = [&] {
            size_t n = 0;
            for (const auto& task : d.mpctl_ndjson({"list"})) {
                n += task["argv"][0] == "sh" ? 1 : 0;
            }
            return n;
        };
        REQUIRE(eventually([&] { return d.mpctl_ndjson({"list", "--state", "running"}).size() == 1; }, 60s));
        // The window is max(4 x jobs, 64) tasks: wait until it is full, then it must stay that size.
        REQUIRE(eventually([&] { return tasks_of_this_map() >= 64; }, 60s));
        CHECK(tasks_of_this_map() <= 64);
        CHECK(processes_matching("^seq 1000003$"));
        CHECK(tasks_of_this_map() <= 64);
        bg->signal(SIGINT);
        auto r = bg->wait(60s);
        REQUIRE(r);
        INFO(slurp(t / "err2"));
        CHECK(r->exit_code == 130);
        CHECK(eventually([&] { return unfinished_tasks(d) == 0; }, 60s));
        CHECK(eventually([] { return !processes_matching("^seq 1000003$"); }, 60s));
    }
}

TEST_CASE("Ctrl-C on map cancels its pending tasks and stops its running ones", "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    auto bg = start_map_and_wait(d, t, sleep_map_args("7919."), 2, 8);  // hours long
    REQUIRE(processes_matching("^sleep 7919\\."));
    bg->signal(SIGINT);
    auto r = bg->wait(60s);
    REQUIRE(r);
    INFO(slurp(t / "err"));
    CHECK(r->exit_code == 130);
    CHECK(unfinished_tasks(d) == 0);
    auto all = d.mpctl_ndjson({"list"});
    CHECK(all.size() == 10);
    for (const auto& o : all) {
        CHECK(o["state"] == "cancelled");
    }
    CHECK(eventually([] { return !processes_matching("^sleep 7919\\."); }, 60s));
}

TEST_CASE("a map killed with SIGKILL leaves nothing queued: its running tasks finish, the rest are cancelled",
          "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    auto bg = start_map_and_wait(d, t, sleep_map_args("2.7919"), 2, 8);  // under 3 s each
    bg->signal(SIGKILL);  // no handler runs: only the daemon can see the map is gone (its connection closed)
    REQUIRE(bg->wait(60s));
    REQUIRE(eventually([&] { return unfinished_tasks(d) == 0; }, 60s));
    auto all = d.mpctl_ndjson({"list"});
    REQUIRE(all.size() == 10);
    size_t succeeded = 0;
    size_t cancelled = 0;
    for (const auto& o : all) {
        if (o["state"] == "succeeded") {
            ++succeeded;
        } else if (o["state"] == "cancelled") {
            ++cancelled;
            CHECK_THAT(o["error"].get<std::string>(), Contains("connection that owned pool"));
        }
    }
    // The two that ran finish (a third only if one of them ended before the kill); none is left queued, and
    // without the cancel all ten would have run.
    CHECK(succeeded >= 2);
    CHECK(succeeded <= 4);
    CHECK(succeeded + cancelled == 10);
    // The pool went with the last of its tasks.
    CHECK(eventually([&] { return pool_names(d) == std::vector<std::string>{"default"}; }, 60s));
}

TEST_CASE("a daemon that stops takes a running map's queue with it: nothing of it runs after a restart",
          "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    auto bg = start_map_and_wait(
        d, t, {"map", "-j1", "--", "sh", "-c", sh_wait_for(t / "GO"), ":::", "a", "b", "c", "d", "e"}, 1, 4);
    d.stop();  // SIGTERM: stop --now. An ordinary queue would wait for the next start; a map's cannot.
    REQUIRE(bg->wait(60s));
    d.start();
    CHECK(unfinished_tasks(d) == 0);
    auto all = d.mpctl_ndjson({"list"});
    REQUIRE(all.size() == 5);
    size_t orphans = 0;
    for (const auto& o : all) {
        CHECK(o["state"] == "cancelled");
        if (o["error"].get<std::string>().find("the daemon stopped") != std::string::npos) {
            ++orphans;
        }
    }
    CHECK(orphans == 4);
}

TEST_CASE("after a kill -9 of the daemon under a map, the restarted daemon cancels the map's queue",
          "[e2e][map]") {
    DaemonFixture d;
    TempDir t;
    GroupReaper reaper;  // the task running at the kill is orphaned: it must not outlive the test
    auto bg = start_map_and_wait(
        d, t, {"map", "-j1", "--", "sh", "-c", sh_wait_for(t / "GO"), ":::", "a", "b", "c", "d", "e"}, 1, 4);
    reaper.add(d.mpctl_ndjson({"list", "--state", "running"}).at(0)["pid"].get<pid_t>());
    d.kill9();
    REQUIRE(bg->wait(60s));
    d.start();
    CHECK(unfinished_tasks(d) == 0);
    size_t cancelled = 0;
    size_t lost = 0;
    for (const auto& o : d.mpctl_ndjson({"list"})) {
        if (o["state"] == "cancelled") {
            ++cancelled;
            CHECK_THAT(o["error"].get<std::string>(), Contains("the daemon restarted"));
        } else if (o["reason"] == "lost") {
            ++lost;
        }
    }
    CHECK(cancelled == 4);
    CHECK(lost == 1);
    CHECK(pool_names(d) == std::vector<std::string>{"default"});
    d.stop();
    d.start();  // and the pool is not remembered any more
    CHECK(pool_names(d) == std::vector<std::string>{"default"});
}

TEST_CASE("map stops its tasks when nobody reads its output any more", "[e2e][map]") {
    DaemonFixture d;
    // `head -1` exits after the first result: the map sees its stdout closed and stops the sleeps at once.
    std::string map =
        shell_quote_for_test(mpctl_bin()) +
        " map -j2 -- sh -c 'if [ $0 = a ]; then echo a; else exec sleep 7907; fi' ::: a b c d e";
    auto start = std::chrono::steady_clock::now();
    auto r = run_process({"/bin/sh", "-c", map + " | head -1"}, d.client_options());
    INFO(r.err);
    CHECK(r.out == "a\n");
    CHECK_FALSE(r.timed_out);
    CHECK(std::chrono::steady_clock::now() - start < 100s);
    CHECK(unfinished_tasks(d) == 0);
    CHECK(eventually([] { return !processes_matching("^sleep 7907$"); }, 60s));
}
