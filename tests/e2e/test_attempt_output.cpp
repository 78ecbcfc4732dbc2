// A retried task keeps every attempt's output (issue 13): logs shows them in order, --attempt N one of
// them, result and run --json the last; --follow (and `mpctl follow`) goes from attempt to attempt; remove
// deletes them all.
// Attempts are paced by files the test creates, never by sleeps.

#include <filesystem>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

// A script whose attempt N writes "out N" and "err N" (counting in COUNTER), and fails until attempt SUCCEEDS
// (0: never). With GATE, attempt N first waits for the file GATE<N>.
std::string counting_script(const std::string& counter, int succeeds, const std::string& gate = "") {
    std::string s = "n=$(cat " + counter + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " + counter +
                    "; echo out $n; echo err $n >&2; ";
    if (!gate.empty()) {
        s += "while [ ! -e " + gate + "$n ]; do sleep 0.01; done; ";
    }
    s += succeeds > 0 ? "[ $n -ge " + std::to_string(succeeds) + " ]" : "exit 1";
    return s;
}

// Where attempt ATTEMPT of a task whose latest files are LIVE (a status's stdout_path) was put aside.
std::string put_aside(const std::string& live, int attempt) {
    auto dot = live.rfind('.');
    return live.substr(0, dot) + ".attempt-" + std::to_string(attempt) + live.substr(dot);
}

}  // namespace

TEST_CASE(
    "a retried task keeps every attempt's output: logs shows all in order, --attempt one, result the last",
    "[e2e][attempts]") {
    DaemonFixture d;
    TempDir t;
    int64_t id = d.submit({"--retries", "2", "--", "sh", "-c", counting_script(t / "n", 0)});
    CHECK(d.mpctl({"wait", str(id)}).exit_code == 1);
    CHECK(d.status(id)["attempts"] == 3);

    // Not on a terminal: the bytes alone, attempt after attempt.
    CHECK(d.mpctl({"logs", str(id)}).out == "out 1\nout 2\nout 3\n");
    CHECK(d.mpctl({"logs", "--stderr", str(id)}).out == "err 1\nerr 2\nerr 3\n");
    auto second = d.mpctl({"logs", "--attempt", "2", "--stderr", str(id)});
    CHECK(second.exit_code == 0);
    CHECK(second.out == "err 2\n");
    CHECK(d.mpctl({"logs", "--attempt", "1", str(id)}).out == "out 1\n");
    CHECK(d.mpctl({"logs", "--tail", "1", str(id)}).out == "out 3\n");  // a tail is the latest attempt's

    // The result is the last attempt's output, as is the status's stdout_path.
    auto result = d.mpctl({"result", str(id)});
    CHECK(result.exit_code == 1);
    CHECK(result.out == "out 3\n");
    CHECK(slurp(d.status(id)["stdout_path"].get<std::string>()) == "out 3\n");

    // An attempt the task can never make is named as such.
    auto past = d.mpctl({"logs", "--attempt", "4", str(id)});
    CHECK(past.exit_code != 0);
    CHECK_THAT(past.err, Contains("makes at most 3 attempts"));

    // --json: each chunk names its attempt.
    auto chunks = d.mpctl_ndjson({"logs", str(id)});
    REQUIRE(chunks.size() == 3);
    for (int i = 0; i < 3; ++i) {
        CHECK(chunks[static_cast<size_t>(i)]["attempt"] == i + 1);
    }
}

TEST_CASE("logs --follow goes from attempt to attempt, and --attempt N ends with that attempt",
          "[e2e][attempts]") {
    DaemonFixture d;
    TempDir t;
    std::string gate = t / "GO";
    int64_t id = d.submit({"--retries", "2", "--", "sh", "-c", counting_script(t / "n", 3, gate)});
    auto all = mpctl_in_background(d, {"follow", "--both", str(id)}, t / "all.out", t / "all.err");
    auto first = mpctl_in_background(d, {"logs", "--follow", "--attempt", "1", str(id)}, t / "first.out",
                                     t / "first.err");
    auto third = mpctl_in_background(d, {"logs", "--follow", "--attempt", "3", str(id)}, t / "third.out",
                                     t / "third.err");
    CHECK(eventually([&] { return slurp(t / "all.out") == "out 1\n" && slurp(t / "all.err") == "err 1\n"; }));
    CHECK(eventually([&] { return slurp(t / "first.out") == "out 1\n"; }));
    CHECK(first->running());
    touch(gate + "1");
    // Attempt 1 is over: its follower is done, while attempt 2 runs (it waits for GO2).
    auto r1 = first->wait(60s);
    REQUIRE(r1);
    CHECK(r1->exit_code == 0);
    CHECK(slurp(t / "first.out") == "out 1\n");
    CHECK(eventually([&] { return slurp(t / "all.out") == "out 1\nout 2\n"; }));
    CHECK(all->running());
    CHECK(third->running());
    CHECK(slurp(t / "third.out").empty());  // attempt 3 has not started: waited for
    touch(gate + "2");
    CHECK(eventually([&] { return slurp(t / "third.out") == "out 3\n"; }));
    touch(gate + "3");
    auto r = all->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(slurp(t / "all.out") == "out 1\nout 2\nout 3\n");
    CHECK(slurp(t / "all.err") == "err 1\nerr 2\nerr 3\n");
    auto r3 = third->wait(60s);
    REQUIRE(r3);
    CHECK(slurp(t / "third.out") == "out 3\n");
}

TEST_CASE("run --json gives the last attempt's output, and remove deletes every attempt's files",
          "[e2e][attempts]") {
    DaemonFixture d;
    TempDir t;
    auto run = d.mpctl({"--json", "run", "--retries", "1", "--", "sh", "-c", counting_script(t / "n", 2)});
    CHECK(run.exit_code == 0);
    json ran = json::parse(run.out);
    CHECK(ran["attempts"] == 2);
    CHECK(ran["stdout"] == "out 2\n");
    CHECK(ran["stderr"] == "err 2\n");

    int64_t id = ran["id"].get<int64_t>();
    std::string live = ran["stdout_path"];
    std::string earlier = put_aside(live, 1);
    CHECK(slurp(earlier) == "out 1\n");
    CHECK(slurp(put_aside(ran["stderr_path"].get<std::string>(), 1)) == "err 1\n");
    REQUIRE(d.mpctl({"remove", str(id)}).exit_code == 0);
    CHECK(eventually([&] { return !std::filesystem::exists(earlier) && !std::filesystem::exists(live); }));
}

TEST_CASE("a retried pipeline keeps each attempt's per-stage stderr", "[e2e][attempts]") {
    DaemonFixture d;
    TempDir t;
    std::string counter = t / "n";
    std::string stage0 = "n=$(cat " + counter + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " + counter +
                         "; echo stage0 try $n >&2; echo data $n";
    int64_t id = d.submit({"--retries", "1", "--pipe", "--", "sh", "-c", stage0, "|", "sh", "-c",
                           "cat; echo stage1 >&2; exit 1"});
    CHECK(d.mpctl({"wait", str(id)}).exit_code == 1);
    CHECK(d.mpctl({"logs", str(id)}).out == "data 1\ndata 2\n");
    CHECK(d.mpctl({"logs", "--stage", "0", str(id)}).out == "stage0 try 1\nstage0 try 2\n");
    CHECK(d.mpctl({"logs", "--stage", "0", "--attempt", "2", str(id)}).out == "stage0 try 2\n");
    CHECK(d.mpctl({"logs", "--stage", "1", "--attempt", "1", str(id)}).out == "stage1\n");
}
