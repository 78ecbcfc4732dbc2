// Tasks as futures: wait (all, --any, --timeout), as-completed, result, logs (--stderr, --follow),
// cancel, kill --signal, list with its filters, status of several. Completion order is driven by files the
// test creates, never by sleeps.

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

TEST_CASE("wait returns only when every task is done", "[e2e][futures]") {
    DaemonFixture d;
    TempDir t;
    int64_t a = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO_A")});
    int64_t b = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO_B")});
    auto waiter = mpctl_in_background(d, {"wait", str(a), str(b)}, t / "out", t / "err");
    touch(t / "GO_A");
    d.wait_for_state(a, "succeeded");
    // b cannot finish before GO_B exists, so the wait must still be waiting.
    CHECK(waiter->running());
    CHECK(d.status(b)["state"] == "running");
    touch(t / "GO_B");
    auto r = waiter->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(d.status(b)["state"] == "succeeded");
}

TEST_CASE("wait --any returns as soon as one task is done while another still runs", "[e2e][futures]") {
    DaemonFixture d;
    TempDir t;
    int64_t slow = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO_SLOW")});
    int64_t fast = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO_FAST")});
    auto waiter = mpctl_in_background(d, {"wait", "--any", str(slow), str(fast)}, t / "out", t / "err");
    d.wait_for_state(fast, "running");
    touch(t / "GO_FAST");
    auto r = waiter->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(d.status(slow)["state"] == "running");

    // --json shows which are done and which are not.
    json j = d.mpctl_json({"wait", "--any", str(slow), str(fast)});
    CHECK(j["done"] == json::array({fast}));
    CHECK(j["pending"] == json::array({slow}));
    touch(t / "GO_SLOW");
    CHECK(d.mpctl({"wait", str(slow)}).exit_code == 0);
}

TEST_CASE("wait --timeout exits 124 and leaves the tasks running", "[e2e][futures]") {
    DaemonFixture d;
    TempDir t;
    int64_t a = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO")});
    int64_t b = d.submit({"--", "true"});
    d.wait_for_state(b, "succeeded");
    auto r = d.mpctl({"wait", "--timeout", "0.3", str(a), str(b)});
    CHECK(r.exit_code == 124);
    CHECK_THAT(r.err, Contains("timed out"));
    CHECK(d.status(a)["state"] == "running");
    touch(t / "GO");
    CHECK(d.mpctl({"wait", str(a), str(b)}).exit_code == 0);
}

TEST_CASE("as-completed prints ids in completion order", "[e2e][futures]") {
    DaemonFixture d(DaemonOptions{4, {}, {}, {}});
    TempDir t;
    std::vector<int64_t> ids;
    for (const char* name : {"GO_0", "GO_1", "GO_2"}) {
        ids.push_back(d.submit({"--", "sh", "-c", sh_wait_for(t / name)}));
    }
    auto streamer =
        mpctl_in_background(d, {"as-completed", str(ids[0]), str(ids[1]), str(ids[2])}, t / "out", t / "err");
    // Finish them in the order 2, 0, 1, each only after the previous one is done.
    std::vector<int> order{2, 0, 1};
    std::string expected;
    for (int i : order) {
        touch(t / ("GO_" + std::to_string(i)));
        d.wait_for_state(ids[static_cast<size_t>(i)], "succeeded");
        expected += str(ids[static_cast<size_t>(i)]) + "\n";
        // Each id is printed as it finishes, not at the end.
        CHECK(eventually([&] { return slurp(t / "out") == expected; }));
    }
    auto r = streamer->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(slurp(t / "out") == expected);
}

TEST_CASE("as-completed lists tasks already done first, in the order they finished", "[e2e][futures]") {
    DaemonFixture d;
    TempDir t;
    int64_t first = d.submit({"--", "true"});
    d.wait_for_state(first, "succeeded");
    int64_t second = d.submit({"--", "sh", "-c", "exit 4"});
    d.wait_for_state(second, "failed");
    int64_t third = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO")});
    auto streamer = mpctl_in_background(d, {"--json", "as-completed", str(third), str(second), str(first)},
                                        t / "out", t / "err");
    CHECK(eventually([&] { return lines_of(slurp(t / "out")).size() == 2; }));
    touch(t / "GO");
    auto r = streamer->wait(60s);
    REQUIRE(r);
    // The first unsuccessful in argument order: third succeeded, second exited 4.
    CHECK(r->exit_code == 4);
    std::vector<json> objects;
    for (const auto& line : lines_of(slurp(t / "out"))) {
        objects.push_back(json::parse(line));
    }
    REQUIRE(objects.size() == 3);
    CHECK(ids_of(objects) == std::vector<int64_t>{first, second, third});
    CHECK(objects[1]["state"] == "failed");
    CHECK(objects[1]["exit_code"] == 4);
}

TEST_CASE("result waits, prints the task's stdout and exits with its code", "[e2e][futures]") {
    DaemonFixture d;
    TempDir t;
    int64_t id = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO") + "; echo out; echo err >&2; exit 4"});
    auto waiter = mpctl_in_background(d, {"result", str(id)}, t / "out", t / "err");
    d.wait_for_state(id, "running");
    touch(t / "GO");
    auto r = waiter->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 4);
    CHECK(slurp(t / "out") == "out\n");
    // The task's stderr is not result's business; only a note about the failure.
    CHECK(slurp(t / "err").find("err\n") == std::string::npos);

    int64_t ok = d.submit({"--", "printf", "a\\nb"});
    auto r2 = d.mpctl({"result", str(ok)});
    CHECK(r2.exit_code == 0);
    CHECK(r2.out == "a\nb");
}

TEST_CASE("result --timeout exits 124 while the task runs on", "[e2e][futures]") {
    DaemonFixture d;
    TempDir t;
    int64_t id = d.submit({"--", "sh", "-c", "echo partial; " + sh_wait_for(t / "GO") + "; echo done"});
    auto r = d.mpctl({"result", "--timeout", "0.3", str(id)});
    CHECK(r.exit_code == 124);
    CHECK(d.status(id)["state"] == "running");
    touch(t / "GO");
    auto r2 = d.mpctl({"result", "--timeout", "60", str(id)});
    CHECK(r2.exit_code == 0);
    CHECK(r2.out == "partial\ndone\n");
}

TEST_CASE("logs prints captured stdout, logs --stderr the stderr", "[e2e][futures]") {
    DaemonFixture d;
    int64_t id = d.submit({"--", "sh", "-c", "echo to-out; echo to-err >&2; exit 1"});
    d.wait_for_state(id, "failed");
    auto out = d.mpctl({"logs", str(id)});
    CHECK(out.exit_code == 0);
    CHECK(out.out == "to-out\n");
    auto err = d.mpctl({"logs", "--stderr", str(id)});
    CHECK(err.exit_code == 0);
    CHECK(err.out + err.err == "to-err\n");
}

TEST_CASE("logs --follow streams lines as they are written and ends when the task ends", "[e2e][futures]") {
    DaemonFixture d;
    TempDir t;
    std::string script =
        "echo line1; " + sh_wait_for(t / "GO1") + "; echo line2; " + sh_wait_for(t / "GO2") + "; echo line3";
    int64_t id = d.submit({"--", "sh", "-c", script});
    auto follower = mpctl_in_background(d, {"logs", "--follow", str(id)}, t / "out", t / "err");
    CHECK(eventually([&] { return slurp(t / "out") == "line1\n"; }));
    touch(t / "GO1");
    CHECK(eventually([&] { return slurp(t / "out") == "line1\nline2\n"; }));
    // The task still runs (it waits for GO2), so the follower must still be following.
    CHECK(follower->running());
    touch(t / "GO2");
    auto r = follower->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(slurp(t / "out") == "line1\nline2\nline3\n");
}

TEST_CASE("logs --follow of a pending task waits for it to start", "[e2e][futures]") {
    DaemonFixture d;
    TempDir t;
    REQUIRE(d.mpctl({"pool", "set", "solo", "--workers", "1"}).exit_code == 0);
    int64_t blocker = d.submit({"--pool", "solo", "--", "sh", "-c", sh_wait_for(t / "GO")});
    d.wait_for_state(blocker, "running");
    int64_t queued = d.submit({"--pool", "solo", "--", "echo", "from-queued"});
    auto follower = mpctl_in_background(d, {"logs", "--follow", str(queued)}, t / "out", t / "err");
    touch(t / "GO");
    auto r = follower->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(slurp(t / "out") == "from-queued\n");
}

TEST_CASE("cancel of a pending task cancels it and leaves the running one alone", "[e2e][futures]") {
    DaemonFixture d;
    TempDir t;
    REQUIRE(d.mpctl({"pool", "set", "solo", "--workers", "1"}).exit_code == 0);
    int64_t blocker = d.submit({"--pool", "solo", "--", "sh", "-c", sh_wait_for(t / "GO")});
    d.wait_for_state(blocker, "running");
    int64_t queued = d.submit({"--pool", "solo", "--", "touch", t / "RAN"});
    CHECK(d.status(queued)["state"] == "pending");
    auto r = d.mpctl({"cancel", str(queued)});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    json s = d.status(queued);
    CHECK(s["state"] == "cancelled");
    CHECK(s["reason"].is_null());
    CHECK(s["started_at"].is_null());
    CHECK(d.status(blocker)["state"] == "running");
    touch(t / "GO");
    d.wait_for_state(blocker, "succeeded");
    // Once the slot is free, the cancelled task still does not run.
    int64_t after = d.submit({"--pool", "solo", "--", "true"});
    d.wait_for_state(after, "succeeded");
    CHECK_FALSE(exists(t / "RAN"));
    // Cancelling a finished task changes nothing.
    (void)d.mpctl({"cancel", str(blocker)});
    CHECK(d.status(blocker)["state"] == "succeeded");
}

TEST_CASE("cancel --force terminates a running task, which ends cancelled", "[e2e][futures]") {
    DaemonFixture d;
    int64_t id = d.submit({"--", "sleep", "600"});
    d.wait_for_state(id, "running");
    auto r = d.mpctl({"cancel", "--force", str(id)});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    json s = d.wait_for_state(id, "cancelled");
    CHECK(s["state"] == "cancelled");
    CHECK(s["pid"].is_null());
    CHECK(is_rfc3339_utc(s["finished_at"]));
}

TEST_CASE("kill --signal delivers TERM and INT, by name and by number, to the task", "[e2e][futures]") {
    DaemonFixture d;
    TempDir t;
    struct Case {
        std::vector<std::string> signal_args;
        std::string seen;
    };
    std::vector<Case> cases{{{"--signal", "TERM"}, "TERM"}, {{"--signal", "INT"}, "INT"},
                            {{"--signal", "15"}, "TERM"},   {{"--signal", "2"}, "INT"},
                            {{"-s", "SIGINT"}, "INT"},      {{}, "TERM"}};
    int n = 0;
    for (const auto& c : cases) {
        std::string ready = t / ("ready" + std::to_string(n++));
        std::string script = "trap 'echo got TERM; exit 0' TERM; trap 'echo got INT; exit 0' INT; touch " +
                             ready + "; while :; do sleep 0.05; done";
        int64_t id = d.submit({"--", "sh", "-c", script});
        REQUIRE(wait_for_file(ready));
        std::vector<std::string> args{"kill", str(id)};
        args.insert(args.end(), c.signal_args.begin(), c.signal_args.end());
        auto r = d.mpctl(args);
        INFO("mpctl kill " << (c.signal_args.empty() ? "" : c.signal_args.back()) << ": " << r.err);
        CHECK(r.exit_code == 0);
        json s = d.wait_for_state(id, "succeeded");
        CHECK(s["state"] == "succeeded");
        CHECK(slurp(s["stdout_path"].get<std::string>()) == "got " + c.seen + "\n");
    }
}

TEST_CASE("kill --signal KILL makes the task fail with that signal", "[e2e][futures]") {
    DaemonFixture d;
    int64_t id = d.submit({"--", "sleep", "600"});
    d.wait_for_state(id, "running");
    CHECK(d.mpctl({"kill", "--signal", "KILL", str(id)}).exit_code == 0);
    json s = d.wait_for_state(id, "failed");
    CHECK(s["reason"] == "signal");
    CHECK(s["signal"] == 9);
}

TEST_CASE("list filters by state, label, pool and limit, and prints NDJSON", "[e2e][futures]") {
    DaemonFixture d;
    TempDir t;
    int64_t t1 = d.submit({"--label", "team=a", "--pool", "pa", "--", "true"});
    int64_t t2 = d.submit({"--label", "team=b", "--", "false"});
    int64_t t3 = d.submit({"--label", "team=a", "--label", "x=1", "--", "true"});
    int64_t t4 = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO")});
    d.wait_for_state(t1, "succeeded");
    d.wait_for_state(t2, "failed");
    d.wait_for_state(t3, "succeeded");
    d.wait_for_state(t4, "running");

    using Ids = std::vector<int64_t>;
    auto all = d.mpctl_ndjson({"list"});
    CHECK(ids_of(all) == Ids{t1, t2, t3, t4});
    for (const auto& o : all) {
        CHECK(o.contains("state"));
        CHECK(o.contains("argv"));
    }
    CHECK(ids_of(d.mpctl_ndjson({"list", "--state", "succeeded"})) == Ids{t1, t3});
    CHECK(ids_of(d.mpctl_ndjson({"list", "--state", "failed"})) == Ids{t2});
    CHECK(ids_of(d.mpctl_ndjson({"list", "--state", "running"})) == Ids{t4});
    CHECK(ids_of(d.mpctl_ndjson({"list", "--state", "succeeded,failed"})) == Ids{t1, t2, t3});
    CHECK(ids_of(d.mpctl_ndjson({"list", "--state", "pending"})).empty());
    CHECK(ids_of(d.mpctl_ndjson({"list", "--label", "team=a"})) == Ids{t1, t3});
    CHECK(ids_of(d.mpctl_ndjson({"list", "--label", "x"})) == Ids{t3});
    CHECK(ids_of(d.mpctl_ndjson({"list", "--label", "team=a", "--label", "x=1"})) == Ids{t3});
    CHECK(ids_of(d.mpctl_ndjson({"list", "--pool", "pa"})) == Ids{t1});
    CHECK(ids_of(d.mpctl_ndjson({"list", "--pool", "default"})) == Ids{t2, t3, t4});
    CHECK(ids_of(d.mpctl_ndjson({"list", "--limit", "2"})) == Ids{t3, t4});
    CHECK(ids_of(d.mpctl_ndjson({"list", "--state", "succeeded", "--limit", "1"})) == Ids{t3});

    auto table = d.mpctl({"list"});
    CHECK(table.exit_code == 0);
    CHECK_THAT(table.out, Contains("ID"));
    CHECK(lines_of(table.out).size() == 5);
    touch(t / "GO");
}

TEST_CASE("status of several ids prints one JSON object per line in argument order", "[e2e][futures]") {
    DaemonFixture d;
    int64_t a = d.submit({"--name", "first", "--", "true"});
    int64_t b = d.submit({"--name", "second", "--", "false"});
    d.wait_for_state(a, "succeeded");
    d.wait_for_state(b, "failed");
    auto ab = d.mpctl_ndjson({"status", str(a), str(b)});
    REQUIRE(ab.size() == 2);
    CHECK(ab[0]["id"] == a);
    CHECK(ab[0]["name"] == "first");
    CHECK(ab[1]["id"] == b);
    CHECK(ab[1]["state"] == "failed");
    CHECK(ids_of(d.mpctl_ndjson({"status", str(b), str(a)})) == std::vector<int64_t>{b, a});

    auto table = d.mpctl({"status", str(a), str(b)});
    CHECK(table.exit_code == 0);
    CHECK_THAT(table.out, Contains("first"));
    CHECK_THAT(table.out, Contains("second"));
}
