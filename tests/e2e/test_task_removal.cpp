// mpctl remove and clean: finished tasks go, journal rows and output files, and their ids are never given
// again.

#include <filesystem>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

bool file_exists(const std::string& path) {
    return std::filesystem::exists(path);
}

std::vector<int64_t> listed_task_ids(DaemonFixture& d) {
    std::vector<int64_t> ids;
    for (const auto& t : d.mpctl_ndjson({"list"})) {
        ids.push_back(t["id"].get<int64_t>());
    }
    return ids;
}

}  // namespace

TEST_CASE("remove forgets finished tasks and their files, refuses unfinished ones, and ids are not reused",
          "[e2e][removal]") {
    DaemonFixture d;
    int64_t ok = d.submit({"--", "sh", "-c", "echo out; echo err >&2"});
    int64_t piped = d.submit({"--pipe", "--", "echo", "x", "|", "cat"});
    int64_t running = d.submit({"--", "sleep", "600"});
    REQUIRE(d.mpctl({"wait", str(ok), str(piped)}).exit_code == 0);
    d.wait_for_state(running, "running");
    json st = d.status(ok);
    std::string out = st["stdout_path"], err = st["stderr_path"];
    std::string stage_err = d.status(piped)["stages"][0]["stderr_path"];
    REQUIRE(file_exists(out));
    REQUIRE(file_exists(stage_err));

    auto refused = d.mpctl({"remove", str(running)});
    CHECK(refused.exit_code != 0);
    CHECK_THAT(refused.err, Contains("not finished"));
    CHECK(d.mpctl({"remove", "99999"}).exit_code == 4);

    auto r = d.mpctl({"remove", str(ok), str(piped)});
    CHECK(r.exit_code == 0);
    CHECK(r.out == str(ok) + " removed\n" + str(piped) + " removed\n");
    CHECK(listed_task_ids(d) == std::vector<int64_t>{running});
    CHECK(d.mpctl({"status", str(ok)}).exit_code == 4);
    CHECK(eventually([&] { return !file_exists(out) && !file_exists(err) && !file_exists(stage_err); }));

    // The newest task removed, then a restart: its id stays taken.
    REQUIRE(d.mpctl({"cancel", "--force", str(running)}).exit_code == 0);
    d.wait_for_state(running, "cancelled");
    CHECK(d.mpctl({"remove", str(running)}).exit_code == 0);
    CHECK(d.stop() == 0);
    d.start();
    CHECK(listed_task_ids(d).empty());
    CHECK(d.submit({"--", "true"}) > running);
}

TEST_CASE("clean removes the finished tasks its filters match, and only those", "[e2e][removal]") {
    DaemonFixture d;
    int64_t good = d.submit({"--label", "batch=a", "--", "true"});
    int64_t bad = d.submit({"--label", "batch=a", "--", "false"});
    int64_t other = d.submit({"--label", "batch=b", "--", "false"});
    int64_t pending = d.submit({"--after", str(bad), "--", "true"});  // fails its dependency
    int64_t running = d.submit({"--", "sleep", "600"});
    d.wait_for_state(running, "running");
    REQUIRE(d.mpctl({"wait", str(good)}).exit_code == 0);
    (void)d.mpctl({"wait", str(bad), str(other), str(pending)});

    CHECK(d.mpctl({"clean", "--older-than", "1h"}).out.empty());  // all finished just now
    CHECK(d.mpctl({"clean", "--state", "failed", "--label", "batch=a"}).out == str(bad) + " removed\n");
    CHECK(d.mpctl({"clean", "--state", "running"}).exit_code == 2);
    auto all = d.mpctl_json({"clean", "--json"});
    CHECK(all["removed"] == json::array({good, other, pending}));
    CHECK(listed_task_ids(d) == std::vector<int64_t>{running});
}

TEST_CASE("keep_finished_max and keep_finished forget the oldest finished tasks, rows and files, at start",
          "[e2e][removal]") {
    TempDir config_dir;
    DaemonOptions o;
    o.extra_args = {"--config", config_dir.write("mpctld.toml", "keep_finished_max = 2\n")};
    DaemonFixture d(o);
    std::vector<int64_t> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(d.submit({"--", "true"}));
    }
    REQUIRE(d.mpctl({"wait", str(ids[0]), str(ids[1]), str(ids[2]), str(ids[3]), str(ids[4])}).exit_code ==
            0);
    std::string oldest_out = d.status(ids[0])["stdout_path"];
    REQUIRE(file_exists(oldest_out));
    // A start sweeps at once (then once a minute): the two newest finished stay.
    CHECK(d.stop() == 0);
    d.start();
    CHECK(eventually([&] { return listed_task_ids(d) == std::vector<int64_t>{ids[3], ids[4]}; }));
    CHECK(eventually([&] { return !file_exists(oldest_out); }));
    CHECK_THAT(d.log(), Contains("retention: forgot 3 finished tasks"));

    // keep_finished: what finished longer ago than that goes too.
    CHECK(d.stop() == 0);
    (void)config_dir.write("mpctld.toml", "keep_finished = \"1ms\"\n");
    d.start();
    CHECK(eventually([&] { return listed_task_ids(d).empty(); }));
    CHECK(d.submit({"--", "true"}) > ids[4]);
}
