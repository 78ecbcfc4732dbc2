// mpctl map: items after ::: or from stdin, placeholders and quoting, columns and chunks, ordering, -j, the
// exit code and --json. Waits are on events with generous deadlines, never on bare sleeps.

#include <algorithm>
#include <set>
#include <signal.h>

#include <catch2/catch.hpp>

#include <mpctl/common/shell_quote.hpp>

#include "map_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using namespace mpctl::test::e2e::map;
using Catch::Matchers::Contains;

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
    auto r = d.mpctl({"map", "-j4", "--colsep", " ", "--", "sh", "-c", "sleep $0; echo $1", "{1}", "{2}"},
                     with_stdin(joined(items)));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == joined(order));

    // --unordered: "first" waits for GO, which is made once mpctl has printed "second" (so once that task
    // is over: a task touching GO itself could still be exiting when "first" is done), so "first" can only
    // finish, and be printed, after "second".
    TempDir t;
    std::string script = "if [ $0 = first ]; then " + sh_wait_for(t / "GO") + "; fi; echo $0";
    std::string reader = "while read -r line; do echo \"$line\"; if [ \"$line\" = second ]; then touch " +
                         (t / "GO") + "; fi; done";
    std::string map = mpctl_bin() + " map -j2 --unordered -- sh -c " + mpctl::common::shell_quote(script) +
                      " ::: first second";
    auto u = run_process({"sh", "-c", map + " | { " + reader + "; }"}, d.client_options());
    INFO(u.err);
    CHECK(u.exit_code == 0);
    CHECK(u.out == "second\nfirst\n");
    // The same without --unordered: input order, whichever finishes first ("second" makes GO itself here).
    ::unlink((t / "GO").c_str());
    std::string go_script =
        "if [ $0 = first ]; then " + sh_wait_for(t / "GO") + "; fi; echo $0; touch " + (t / "GO");
    auto o = d.mpctl({"map", "-j2", "--", "sh", "-c", go_script, ":::", "first", "second"});
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

TEST_CASE("map passes items with spaces, quotes, $, semicolons and backslashes byte for byte", "[e2e][map]") {
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

TEST_CASE("map splits columns {1} {2} where --colsep matches, and without it {1} is the item", "[e2e][map]") {
    DaemonFixture d;
    auto r = d.mpctl({"map", "--colsep", "\\s+", "--", "echo", "{2}", "{1}"}, with_stdin("a  b\nc\td\n"));
    CHECK(r.exit_code == 0);
    CHECK(r.out == "b a\nd c\n");
    auto whole = d.mpctl({"map", "--", "echo", "[{1}]", "[{2}]"}, with_stdin("a  b\n"));
    CHECK(whole.out == "[a  b] []\n");
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
    auto r = d.mpctl({"map", "-j3", "--colsep", " ", "--", "sh", "-c", "sleep $1; exit $0", "{1}", "{2}"},
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

TEST_CASE("a stdin line with a NUL byte fails alone, named by its line: the others run and the map exits 126",
          "[e2e][map]") {
    DaemonFixture d;
    std::string input("a\nx\0y\nb\n", 8);
    auto r = d.mpctl({"map", "-j1", "--", "echo"}, with_stdin(input));
    CHECK(r.exit_code == 126);
    CHECK(r.out == "a\nb\n");
    CHECK_THAT(r.err, Contains("line 2: the item contains a NUL byte"));
    // A hundred good lines before it all run, and the one after it too.
    std::string many;
    for (int i = 1; i <= 100; ++i) {
        many += std::to_string(i) + "\n";
    }
    many += std::string("x\0y\n", 4) + "101\n";
    auto m = d.mpctl({"map", "--", "echo"}, with_stdin(many));
    CHECK(m.exit_code == 126);
    CHECK(lines_of(m.out).size() == 101);
    CHECK_THAT(m.err, Contains("line 101:"));
    // With --json its place in the output is an error line naming it.
    auto j = d.mpctl({"--json", "map", "-j1", "--", "echo"}, with_stdin(input));
    auto out = lines_of(j.out);
    REQUIRE(out.size() == 3);
    json bad = json::parse(out[1]);
    CHECK(bad["line"] == 2);
    CHECK(bad["error"]["exit_code"] == 126);
    CHECK(json::parse(out[2])["argv"] == json::array({"echo", "b"}));
}

TEST_CASE("an item that cannot run halts the map in its turn: those before it run, none after it starts",
          "[e2e][map]") {
    DaemonFixture d;
    std::string input("a\nx\0y\nb\nc\n", 10);
    for (const char* halt : {"now,fail=1", "soon,fail=1"}) {
        INFO(halt);
        auto r = d.mpctl({"map", "-j1", "--halt", halt, "--", "echo"}, with_stdin(input));
        CHECK(r.exit_code == 126);
        CHECK(r.out == "a\n");
        CHECK_THAT(r.err, Contains("map halted after 1 failed task"));
    }
    // A chunk cut short by it goes with the items before it.
    auto c = d.mpctl({"map", "--chunksize", "2", "-j1", "--", "echo"}, with_stdin(input));
    CHECK(c.out == "a\nb c\n");
}
