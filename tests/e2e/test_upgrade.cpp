// `mpctl daemon upgrade` (issue 20): the daemon execs its binary in place, so it keeps its pid and stays the
// parent of its tasks, which end with their exact outcome (its own children: no supervisor, journal or
// PIDFD_GET_INFO needed), their timeouts at the original deadline. A binary that cannot run is refused
// before anything is torn down, and the daemon serves on.

#include <chrono>
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;

namespace {

void tasks_survive_an_upgrade(const std::vector<std::string>& extra_args) {
    DaemonFixture d(DaemonOptions{4, extra_args, {}, {}});
    TempDir t;
    int64_t exits_3 = d.submit({"--", "sh", "-c", sh_wait_for(t / "F") + "; exit 3"});
    int64_t times_out = d.submit({"--timeout", "4", "--", "sleep", "100"});
    int64_t finished = d.submit({"--", "sh", "-c", "echo before the upgrade"});
    // A pipeline whose first stage ended (exit 6) before the upgrade and whose second runs on after it.
    int64_t piped = d.submit(
        {"--pipe", "--", "sh", "-c", "exit 6", "|", "sh", "-c", "cat; " + sh_wait_for(t / "P") + "; exit 0"});
    json running = d.wait_for_state(exits_3, "running");
    d.wait_for_state(piped, "running");
    REQUIRE(eventually([&] { return d.status(piped)["stages"][0]["state"] == "failed"; }));
    d.wait_for_state(times_out, "running");
    d.wait_for_state(finished, "succeeded");

    json before = d.mpctl_json({"daemon", "status"});
    pid_t pid = before.at("pid").get<pid_t>();
    auto r = d.mpctl({"--json", "daemon", "upgrade"});
    INFO(r.err << d.log());
    REQUIRE(r.exit_code == 0);
    json after = json::parse(r.out);
    CHECK(after["pid"] == pid);
    CHECK(after["upgrades"] == before.value("upgrades", 0) + 1);
    CHECK(after["supervisor"] == before["supervisor"]);
    CHECK(serving_pid(d) == pid);
    CHECK(d.mpctl({"daemon", "status"}).exit_code == 0);

    json s = d.status(exits_3);
    CHECK(s["state"] == "running");
    CHECK(s["pid"] == running["pid"]);
    CHECK(s["started_at"] == running["started_at"]);
    touch(t / "F");
    json a = d.wait_for_state(exits_3, "failed");
    INFO(a.dump());
    CHECK(a["reason"] == "exit");
    CHECK(a["exit_code"] == 3);

    CHECK(d.status(piped)["state"] == "running");
    touch(t / "P");
    json p = d.wait_for_state(piped, "failed");
    INFO(p.dump());
    CHECK(p["exit_code"] == 6);
    CHECK(p["stages"][1]["state"] == "succeeded");

    // At its original deadline, 4 s after its start.
    json timeout = d.wait_for_state(times_out, "failed");
    INFO(timeout.dump());
    CHECK(timeout["reason"] == "timeout");
    int64_t ran_ms = ms_between(timeout["started_at"], timeout["finished_at"]);
    CHECK(ran_ms >= 3900);
    CHECK(ran_ms < 6000);

    auto out = d.mpctl({"logs", std::to_string(finished)});
    CHECK(out.exit_code == 0);
    CHECK(out.out == "before the upgrade\n");

    // New tasks run under the new image, and a second upgrade counts.
    int64_t later = d.submit({"--", "sh", "-c", "exit 5"});
    CHECK(d.wait_for_state(later, "failed")["exit_code"] == 5);
    REQUIRE(d.mpctl({"daemon", "upgrade"}).exit_code == 0);
    json again = d.mpctl_json({"daemon", "status"});
    CHECK(again["pid"] == pid);
    CHECK(again["upgrades"] == 2);
}

}  // namespace

TEST_CASE("daemon upgrade execs in place: same pid, running tasks end with their exact outcome",
          "[e2e][upgrade]") {
    tasks_survive_an_upgrade({});
}

TEST_CASE("daemon upgrade under --supervise: the same, and still the supervisor's child", "[e2e][upgrade]") {
    tasks_survive_an_upgrade({"--supervise"});
}

TEST_CASE("daemon upgrade with a binary that cannot run is refused, and the daemon serves on",
          "[e2e][upgrade]") {
    TempDir bin;
    const std::string copy = bin / "mpctld";
    DaemonOptions options{2, {}, {}, {}};
    // The daemon runs from a copy of its own, which the test can make non-executable.
    options.launcher = {"sh", "-c", "cp \"$1\" \"$0\" && shift && exec \"$0\" \"$@\"", copy};
    DaemonFixture d(options);
    TempDir t;
    int64_t id = d.submit({"--", "sh", "-c", sh_wait_for(t / "F") + "; exit 3"});
    d.wait_for_state(id, "running");
    pid_t pid = serving_pid(d);

    REQUIRE(::chmod(copy.c_str(), 0644) == 0);
    auto r = d.mpctl({"daemon", "upgrade"});
    INFO(r.err << d.log());
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("not executable") != std::string::npos);
    json s = d.mpctl_json({"daemon", "status"});
    CHECK(s["pid"] == pid);
    CHECK(s["upgrades"] == 0);
    CHECK(s["stopping"] == false);
    CHECK(d.status(id)["state"] == "running");
    int64_t next = d.submit({"--", "true"});
    CHECK(d.wait_for_state(next, "succeeded")["exit_code"] == 0);

    ::unlink(copy.c_str());
    r = d.mpctl({"daemon", "upgrade"});
    CHECK(r.exit_code != 0);
    CHECK(d.mpctl({"daemon", "status"}).exit_code == 0);

    // Executable again: it upgrades.
    REQUIRE(std::system(("cp " + mpctld_bin() + " " + copy).c_str()) == 0);
    REQUIRE(d.mpctl({"daemon", "upgrade"}).exit_code == 0);
    CHECK(serving_pid(d) == pid);
    touch(t / "F");
    json a = d.wait_for_state(id, "failed");
    CHECK(a["exit_code"] == 3);
}
