// The shortest path a new user takes: run a command, submit one, look at it.

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"

using namespace mpctl::test;

TEST_CASE("run prints the task's output and exits with its code", "[e2e][run]") {
    DaemonFixture d;
    auto r = d.mpctl({"run", "--", "sh", "-c", "echo hello; echo oops >&2; exit 3"});
    CHECK(r.out == "hello\n");
    CHECK(r.err == "oops\n");
    CHECK(r.exit_code == 3);
}

TEST_CASE("submit returns an id at once and status shows the finished future", "[e2e][submit]") {
    DaemonFixture d;
    int64_t id = d.submit({"--name", "greeting", "--", "echo", "hi"});
    CHECK(id == 1);
    auto s = d.wait_for_state(id, "succeeded");
    CHECK(s["state"] == "succeeded");
    CHECK(s["exit_code"] == 0);
    CHECK(s["name"] == "greeting");
    CHECK(s["argv"] == nlohmann::json::array({"echo", "hi"}));
}
