// mpctl restart (issue 13): a finished task runs again as a new task with the same command, environment,
// cwd and options, read back from the journal (a finished task lets go of its environment), also after the
// daemon restarted and with commits on the writer thread (durability full). The old task is left as it was.

#include <filesystem>
#include <sstream>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

// mpctl restart ARGS: the new ids it printed, one per line (fails the test unless it exits 0).
std::vector<int64_t> restart(DaemonFixture& d, const std::vector<std::string>& ids) {
    std::vector<std::string> args{"restart"};
    args.insert(args.end(), ids.begin(), ids.end());
    auto r = d.mpctl(args);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    std::vector<int64_t> out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
        out.push_back(std::stoll(line));
    }
    return out;
}

void check_same_task_again(DaemonFixture& d, TempDir& t) {
    std::string dir = t / "work";
    REQUIRE(std::filesystem::create_directories(dir));
    ProcessOptions env;
    env.env_set = {{"FOO", "from-the-submitter"}};
    int64_t old = d.submit({"--name", "greet", "--label", "team=infra", "--cwd", dir, "--env", "FOO",
                            "--timeout", "60", "--", "sh", "-c", "echo \"$FOO in $(pwd)\"; exit 3"},
                           env);
    CHECK(d.mpctl({"wait", str(old)}).exit_code == 3);
    json before = d.status(old);

    auto ids = restart(d, {str(old)});
    REQUIRE(ids.size() == 1);
    int64_t again = ids[0];
    CHECK(again > old);
    CHECK(d.mpctl({"wait", str(again)}).exit_code == 3);
    CHECK(d.mpctl({"logs", str(again)}).out == "from-the-submitter in " + dir + "\n");
    json now = d.status(again);
    CHECK(now["name"] == "greet");
    CHECK(now["labels"] == json({{"team", "infra"}, {"restart_of", str(old)}}));
    CHECK(now["timeout"] == before["timeout"]);
    CHECK(now["argv"] == before["argv"]);
    CHECK(now["cwd"] == dir);
    // The old task is as it was.
    CHECK(d.status(old) == before);
    CHECK(d.mpctl({"logs", str(old)}).out == "from-the-submitter in " + dir + "\n");
}

}  // namespace

TEST_CASE("restart runs a finished task again as a new task with its command, env, cwd and options",
          "[e2e][restart]") {
    DaemonFixture d;
    TempDir t;
    check_same_task_again(d, t);
}

TEST_CASE("restart reads the environment back from the journal with commits on the writer thread",
          "[e2e][restart]") {
    TempDir cfg;
    std::string path = cfg.write("mpctld.toml", "durability = \"full\"\n");
    DaemonFixture d(DaemonOptions{2, {"--config", path}, {}, {}});
    TempDir t;
    check_same_task_again(d, t);
}

TEST_CASE("restart works for a task finished before the daemon restarted", "[e2e][restart]") {
    DaemonFixture d;
    ProcessOptions env;
    env.env_set = {{"FOO", "kept"}};
    int64_t old = d.submit({"--env", "FOO", "--", "sh", "-c", "echo $FOO"}, env);
    CHECK(d.mpctl({"wait", str(old)}).exit_code == 0);
    REQUIRE(d.stop() == 0);
    d.start();
    auto ids = restart(d, {str(old)});
    REQUIRE(ids.size() == 1);
    CHECK(d.mpctl({"result", str(ids[0])}).out == "kept\n");
}

TEST_CASE("tasks restarted together wait for each other's restarts, the new ids come in the order asked",
          "[e2e][restart]") {
    DaemonFixture d;
    TempDir t;
    std::string gate = t / "GO";
    int64_t first = d.submit({"--", "sh", "-c", "[ -e " + gate + " ]"});
    int64_t second = d.submit({"--after", str(first), "--", "echo", "second ran"});
    CHECK(d.mpctl({"wait", str(first), str(second)}).exit_code != 0);
    CHECK(d.status(second)["reason"] == "dependency");

    touch(gate);
    auto ids = restart(d, {str(second), str(first)});
    REQUIRE(ids.size() == 2);
    int64_t new_second = ids[0], new_first = ids[1];
    CHECK(d.status(new_second)["after"] == json::array({new_first}));
    CHECK(d.mpctl({"wait", str(new_first), str(new_second)}).exit_code == 0);
    CHECK(d.mpctl({"result", str(new_second)}).out == "second ran\n");

    // Restarted alone, a task still waits for the task it named.
    auto alone = restart(d, {str(second)});
    REQUIRE(alone.size() == 1);
    CHECK(d.status(alone[0])["after"] == json::array({first}));
    CHECK(d.mpctl({"wait", str(alone[0])}).exit_code != 0);
    CHECK(d.status(alone[0])["reason"] == "dependency");
}

TEST_CASE("restart refuses unfinished and unknown tasks and restarts nothing then", "[e2e][restart]") {
    DaemonFixture d;
    int64_t done = d.submit({"--", "true"});
    int64_t running = d.submit({"--", "sleep", "600"});
    CHECK(d.mpctl({"wait", str(done)}).exit_code == 0);
    d.wait_for_state(running, "running");
    auto refused = d.mpctl({"restart", str(done), str(running)});
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.err, Contains("not finished"));
    auto unknown = d.mpctl({"restart", str(done), "99999"});
    CHECK(unknown.exit_code == 4);
    CHECK_THAT(unknown.err, Contains("no task 99999"));
    CHECK(d.mpctl_ndjson({"list", "--all"}).size() == 2);  // nothing was added
    CHECK(d.mpctl({"cancel", "--force", str(running)}).exit_code == 0);
}

TEST_CASE("a restarted map item runs in the default pool as a task of its own", "[e2e][restart]") {
    DaemonFixture d;
    auto mapped = d.mpctl({"map", "--", "echo", "item", ":::", "a"});
    REQUIRE(mapped.exit_code == 0);
    auto tasks = d.mpctl_ndjson({"list", "--all"});
    REQUIRE(tasks.size() == 1);
    REQUIRE(tasks[0]["labels"].contains("map"));
    auto ids = restart(d, {str(tasks[0]["id"].get<int64_t>())});
    REQUIRE(ids.size() == 1);
    CHECK(d.mpctl({"result", str(ids[0])}).out == "item a\n");
    json st = d.status(ids[0]);
    CHECK(st["pool"] == "default");
    CHECK_FALSE(st["labels"].contains("map"));
    CHECK(d.mpctl_ndjson({"list"}).size() == 1);  // the map's own task is hidden, the restart is not
}
