// The scheduler seen from outside: pool limits, priorities, dependencies, retries, timeouts that reach the
// whole process group, and pool list. Overlap is detected with marker directories, order with files the
// tasks append to; nothing depends on timing.

#include <map>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

std::map<std::string, json> pools_by_name(const DaemonFixture& d) {
    std::map<std::string, json> out;
    for (const auto& p : d.mpctl_ndjson({"pool", "list"})) {
        out[p.at("name").get<std::string>()] = p;
    }
    return out;
}

}  // namespace

TEST_CASE("two tasks of a pool with one worker never overlap", "[e2e][scheduling]") {
    DaemonFixture d(DaemonOptions{4, {}, {}, {}});
    TempDir t;
    REQUIRE(d.mpctl({"pool", "set", "solo", "--workers", "1"}).exit_code == 0);
    constexpr int k_tasks = 4;
    std::vector<int64_t> ids;
    for (int i = 0; i < k_tasks; ++i) {
        std::string n = std::to_string(i);
        // mkdir is atomic: a second task inside the section at the same time cannot create it.
        std::string script = "mkdir " + (t / "inside") + " || echo overlap >> " + (t / "OVERLAP") +
                             "; touch " + (t / ("started" + n)) + "; " + sh_wait_for(t / ("GO" + n)) +
                             "; rmdir " + (t / "inside");
        ids.push_back(d.submit({"--pool", "solo", "--", "sh", "-c", script}));
    }
    for (int i = 0; i < k_tasks; ++i) {
        std::string n = std::to_string(i);
        REQUIRE(wait_for_file(t / ("started" + n)));
        // While task i holds the only slot, every later one is pending.
        for (int j = i + 1; j < k_tasks; ++j) {
            CHECK(d.status(ids[static_cast<size_t>(j)])["state"] == "pending");
            CHECK_FALSE(exists(t / ("started" + std::to_string(j))));
        }
        json solo = pools_by_name(d)["solo"];
        CHECK(solo["workers"] == 1);
        CHECK(solo["running"] == 1);
        CHECK(solo["pending"] == k_tasks - 1 - i);
        touch(t / ("GO" + n));
    }
    CHECK(d.mpctl({"wait", str(ids[0]), str(ids[1]), str(ids[2]), str(ids[3])}).exit_code == 0);
    CHECK_FALSE(exists(t / "OVERLAP"));
}

TEST_CASE("pool set raises a pool's limit and queued tasks start", "[e2e][scheduling]") {
    DaemonFixture d(DaemonOptions{4, {}, {}, {}});
    TempDir t;
    REQUIRE(d.mpctl({"pool", "set", "grow", "--workers", "1"}).exit_code == 0);
    // Each needs the other to be running: only possible with two slots.
    int64_t a =
        d.submit({"--pool", "grow", "--", "sh", "-c", "touch " + (t / "A") + "; " + sh_wait_for(t / "B")});
    int64_t b =
        d.submit({"--pool", "grow", "--", "sh", "-c", "touch " + (t / "B") + "; " + sh_wait_for(t / "A")});
    REQUIRE(wait_for_file(t / "A"));
    CHECK(d.status(b)["state"] == "pending");
    auto r = d.mpctl_json({"pool", "set", "grow", "--workers", "2"});
    CHECK(r["workers"] == 2);
    CHECK(d.mpctl({"wait", str(a), str(b)}).exit_code == 0);
}

TEST_CASE("within a pool higher priority runs first, equals in submission order", "[e2e][scheduling]") {
    DaemonFixture d;
    TempDir t;
    REQUIRE(d.mpctl({"pool", "set", "solo", "--workers", "1"}).exit_code == 0);
    int64_t blocker = d.submit({"--pool", "solo", "--", "sh", "-c", sh_wait_for(t / "GO")});
    d.wait_for_state(blocker, "running");
    std::string order = t / "order";
    std::vector<std::pair<std::string, std::string>> tasks{{"low", "1"},    {"high", "10"}, {"zero_a", "0"},
                                                           {"mid", "5"},    {"neg", "-3"},  {"zero_b", "0"},
                                                           {"high_b", "10"}};
    std::vector<std::string> ids;
    for (const auto& [name, priority] : tasks) {
        ids.push_back(str(d.submit(
            {"--pool", "solo", "--priority", priority, "--", "sh", "-c", "echo " + name + " >> " + order})));
    }
    touch(t / "GO");
    std::vector<std::string> wait_args{"wait"};
    wait_args.insert(wait_args.end(), ids.begin(), ids.end());
    CHECK(d.mpctl(wait_args).exit_code == 0);
    CHECK(slurp(order) == "high\nhigh_b\nmid\nlow\nzero_a\nzero_b\nneg\n");
}

TEST_CASE("a task with --after runs after its dependencies succeeded", "[e2e][scheduling]") {
    DaemonFixture d(DaemonOptions{4, {}, {}, {}});
    TempDir t;
    std::string order = t / "order";
    int64_t a = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO_A") + "; echo A >> " + order});
    int64_t b = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO_B") + "; echo B >> " + order});
    int64_t c = d.submit({"--after", str(a), "--after", str(b), "--", "sh", "-c", "echo C >> " + order});
    d.wait_for_state(a, "running");
    d.wait_for_state(b, "running");
    CHECK(d.status(c)["state"] == "pending");
    touch(t / "GO_B");
    d.wait_for_state(b, "succeeded");
    // One of two dependencies done: still waiting.
    CHECK(d.status(c)["state"] == "pending");
    CHECK(d.status(c)["started_at"].is_null());
    touch(t / "GO_A");
    json s = d.wait_for_state(c, "succeeded");
    CHECK(s["state"] == "succeeded");
    CHECK(slurp(order) == "B\nA\nC\n");
    // After a finished, successful task: runs at once.
    int64_t late = d.submit({"--after", str(a), "--", "true"});
    CHECK(d.mpctl({"wait", str(late)}).exit_code == 0);
}

TEST_CASE("a failing dependency fails its dependants with reason dependency", "[e2e][scheduling]") {
    DaemonFixture d;
    TempDir t;
    int64_t a = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO") + "; exit 1"});
    int64_t b = d.submit({"--after", str(a), "--", "touch", t / "B_RAN"});
    int64_t c = d.submit({"--after", str(b), "--", "touch", t / "C_RAN"});
    touch(t / "GO");
    auto r = d.mpctl({"wait", str(b)});
    CHECK(r.exit_code == 125);
    json sb = d.status(b);
    CHECK(sb["state"] == "failed");
    CHECK(sb["reason"] == "dependency");
    CHECK(sb["started_at"].is_null());
    // The chain goes on: c depended on b.
    json sc = d.wait_for_state(c, "failed");
    CHECK(sc["reason"] == "dependency");
    CHECK(d.mpctl({"wait", str(c)}).exit_code == 125);
    CHECK_FALSE(exists(t / "B_RAN"));
    CHECK_FALSE(exists(t / "C_RAN"));

    // A cancelled dependency counts as not succeeded too.
    REQUIRE(d.mpctl({"pool", "set", "solo", "--workers", "1"}).exit_code == 0);
    int64_t blocker = d.submit({"--pool", "solo", "--", "sh", "-c", sh_wait_for(t / "GO2")});
    d.wait_for_state(blocker, "running");
    int64_t queued = d.submit({"--pool", "solo", "--", "true"});
    int64_t dependant = d.submit({"--after", str(queued), "--", "true"});
    CHECK(d.mpctl({"cancel", str(queued)}).exit_code == 0);
    CHECK(d.mpctl({"wait", str(dependant)}).exit_code == 125);
    CHECK(d.status(dependant)["reason"] == "dependency");
    touch(t / "GO2");
}

TEST_CASE("a task that fails twice then succeeds is retried and counts three attempts", "[e2e][scheduling]") {
    DaemonFixture d;
    TempDir t;
    std::string counter = t / "count";
    std::string script = "n=$(cat " + counter + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " + counter +
                         "; echo attempt $n; [ $n -ge 3 ]";
    int64_t ok = d.submit({"--retries", "2", "--", "sh", "-c", script});
    CHECK(d.mpctl({"wait", str(ok)}).exit_code == 0);
    json s = d.status(ok);
    CHECK(s["state"] == "succeeded");
    CHECK(s["attempts"] == 3);
    // The output is the last attempt's.
    CHECK(d.mpctl({"result", str(ok)}).out == "attempt 3\n");

    // With one retry the same script gives up after two attempts.
    std::string counter2 = t / "count2";
    std::string script2 = "n=$(cat " + counter2 + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " +
                          counter2 + "; [ $n -ge 3 ]";
    int64_t gives_up = d.submit({"--retries", "1", "--retry-delay", "0.05", "--", "sh", "-c", script2});
    CHECK(d.mpctl({"wait", str(gives_up)}).exit_code == 1);
    json f = d.status(gives_up);
    CHECK(f["state"] == "failed");
    CHECK(f["reason"] == "exit");
    CHECK(f["exit_code"] == 1);
    CHECK(f["attempts"] == 2);
    CHECK(slurp(counter2) == "2\n");
}

TEST_CASE("a spawn failure is not retried", "[e2e][scheduling]") {
    DaemonFixture d;
    int64_t id = d.submit({"--retries", "3", "--", "mpctl-e2e-no-such-command"});
    CHECK(d.mpctl({"wait", str(id)}).exit_code == 127);
    CHECK(d.status(id)["attempts"] == 1);
}

TEST_CASE("a timeout kills the task's whole process group", "[e2e][scheduling]") {
    DaemonFixture d;
    TempDir t;
    GroupReaper reaper;
    int64_t id = d.submit(
        {"--timeout", "3", "--", "sh", "-c", "sleep 1000 & touch " + (t / "ready") + "; sleep 1000"});
    json running = d.wait_for_state(id, "running");
    REQUIRE(running["pid"].is_number_integer());
    pid_t pgid = running["pid"].get<pid_t>();
    reaper.add(pgid);
    // (Only a machine too slow to start sh within the timeout would not get this far.)
    eventually([&] { return exists(t / "ready") || d.status(id)["state"] != "running"; });
    json s = d.wait_for_state(id, "failed");
    CHECK(s["reason"] == "timeout");
    // The background sleep went with its shell.
    CHECK(eventually([&] { return live_group_members(pgid).empty(); }));
    INFO("left behind: " << live_group_members(pgid).size());
}

TEST_CASE("a timeout escalates to SIGKILL for children that ignore SIGTERM after the leader exits",
          "[e2e][scheduling]") {
    DaemonFixture d;
    TempDir t;
    GroupReaper reaper;
    // The leader dies of SIGTERM at once; the subshell's sleep ignores it and must get the SIGKILL.
    std::string script = "(trap '' TERM; touch " + (t / "ready") + "; exec sleep 1000) & sleep 1000";
    int64_t id = d.submit({"--timeout", "2", "--kill-after", "0.5", "--", "sh", "-c", script});
    json running = d.wait_for_state(id, "running");
    REQUIRE(running["pid"].is_number_integer());
    pid_t pgid = running["pid"].get<pid_t>();
    reaper.add(pgid);
    eventually([&] { return exists(t / "ready") || d.status(id)["state"] != "running"; });
    CHECK(d.wait_for_state(id, "failed")["reason"] == "timeout");
    CHECK(eventually([&] { return live_group_members(pgid).empty(); }));
}

TEST_CASE("cancel --force kills the task's whole process group", "[e2e][scheduling]") {
    DaemonFixture d;
    TempDir t;
    GroupReaper reaper;
    int64_t id = d.submit({"--", "sh", "-c", "sleep 1000 & touch " + (t / "ready") + "; sleep 1000"});
    json running = d.wait_for_state(id, "running");
    pid_t pgid = running["pid"].get<pid_t>();
    reaper.add(pgid);
    REQUIRE(wait_for_file(t / "ready"));
    CHECK(d.mpctl({"cancel", "--force", str(id)}).exit_code == 0);
    d.wait_for_state(id, "cancelled");
    CHECK(eventually([&] { return live_group_members(pgid).empty(); }));
}

TEST_CASE("pool list shows every pool's workers, running and pending counts as JSON", "[e2e][scheduling]") {
    DaemonFixture d(DaemonOptions{3, {}, {}, {}});
    TempDir t;
    json set = d.mpctl_json({"pool", "set", "gpu", "--workers", "1"});
    CHECK(set["name"] == "gpu");
    CHECK(set["workers"] == 1);
    int64_t running = d.submit({"--pool", "gpu", "--", "sh", "-c", sh_wait_for(t / "GO")});
    d.wait_for_state(running, "running");
    int64_t queued1 = d.submit({"--pool", "gpu", "--", "true"});
    int64_t queued2 = d.submit({"--pool", "gpu", "--", "true"});

    auto lines = d.mpctl_ndjson({"pool", "list"});
    std::vector<std::string> names;
    for (const auto& p : lines) {
        names.push_back(p.at("name").get<std::string>());
        CHECK(p.contains("workers"));
        CHECK(p.contains("running"));
        CHECK(p.contains("pending"));
    }
    CHECK(names == std::vector<std::string>{"default", "gpu"});
    auto pools = pools_by_name(d);
    CHECK(pools["default"]["workers"] == 3);
    CHECK(pools["default"]["running"] == 0);
    CHECK(pools["gpu"]["workers"] == 1);
    CHECK(pools["gpu"]["running"] == 1);
    CHECK(pools["gpu"]["pending"] == 2);

    auto table = d.mpctl({"pool", "list"});
    CHECK(table.exit_code == 0);
    CHECK(table.out.find("gpu") != std::string::npos);

    touch(t / "GO");
    CHECK(d.mpctl({"wait", str(running), str(queued1), str(queued2)}).exit_code == 0);
    auto after = pools_by_name(d);
    CHECK(after["gpu"]["running"] == 0);
    CHECK(after["gpu"]["pending"] == 0);
}

TEST_CASE("pool set NAME N is the short form, and pool list lines its columns up with spaces",
          "[e2e][scheduling]") {
    DaemonFixture d(DaemonOptions{3, {}, {}, {}});
    CHECK(d.mpctl({"pool", "set", "a-much-longer-name", "12"}).exit_code == 0);
    CHECK(d.mpctl({"pool", "set", "b", "--workers", "2"}).exit_code == 0);
    auto none = d.mpctl({"pool", "set", "c"});
    CHECK(none.exit_code == 2);
    CHECK_THAT(none.err, Contains("how many workers"));
    auto r = d.mpctl({"pool", "list"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find('\t') == std::string::npos);
    auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].rfind("POOL", 0) == 0);
    // Every number column ends where its header does.
    for (const char* column : {"WORKERS", "RUNNING", "PENDING", "WAITING"}) {
        size_t end = lines[0].find(column) + std::string(column).size();
        for (size_t i = 1; i < lines.size(); ++i) {
            INFO(column << " in: " << lines[i]);
            REQUIRE(lines[i].size() >= end);
            CHECK(std::isdigit(static_cast<unsigned char>(lines[i][end - 1])));
            CHECK((lines[i].size() == end || lines[i][end] == ' '));
        }
    }
    CHECK(lines[1].find("12") != std::string::npos);
}

TEST_CASE("pool delete forgets an idle pool and its size, and refuses the default pool and a busy one",
          "[e2e][scheduling]") {
    DaemonFixture d;
    REQUIRE(d.mpctl({"pool", "set", "gone", "5"}).exit_code == 0);
    REQUIRE(d.mpctl({"pool", "set", "busy", "1"}).exit_code == 0);
    int64_t running = d.submit({"--pool", "busy", "--", "sleep", "600"});
    d.wait_for_state(running, "running");
    auto r = d.mpctl({"pool", "delete", "gone"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "pool gone deleted\n");
    auto refused = d.mpctl({"pool", "delete", "busy"});
    CHECK(refused.exit_code != 0);
    CHECK_THAT(refused.err, Contains("1 unfinished task"));
    CHECK(d.mpctl({"pool", "delete", "default"}).exit_code != 0);
    CHECK_THAT(d.mpctl({"pool", "delete", "never-was"}).err, Contains("no pool never-was"));
    auto pools = pools_by_name(d);
    CHECK_FALSE(pools.contains("gone"));
    CHECK(pools.contains("busy"));
    // Gone across a restart too, and a new pool of that name starts at the default size.
    REQUIRE(d.mpctl({"cancel", "--force", str(running)}).exit_code == 0);
    d.wait_for_state(running, "cancelled");
    CHECK(d.stop() == 0);
    d.start();
    CHECK_FALSE(pools_by_name(d).contains("gone"));
}
