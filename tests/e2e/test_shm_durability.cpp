// Shared-memory segments outlive a crash of the daemon (issue 15): a daemon killed with SIGKILL and started
// again takes its segments back from the journal - a persistent one, one leased to an owner still alive
// (unlinked when that owner dies later), one whose time has not run out - and unlinks the one whose owner
// died while it was away. A stop unlinks the leased ones and keeps the persistent one.

#include <filesystem>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;

namespace {

std::string segment(const std::string& tag) {
    return "mpctl-e2e-" + std::to_string(::getpid()) + "-" + tag;
}

bool segment_exists(const std::string& name) {
    return std::filesystem::exists("/dev/shm/" + name);
}

std::vector<std::string> registered(const DaemonFixture& d) {
    std::vector<std::string> names;
    for (const auto& s : d.mpctl_ndjson({"shm", "list"})) {
        names.push_back(s["name"].get<std::string>());
    }
    return names;
}

// Unlinks NAMES at the end of the test, whatever happened.
struct Cleanup {
    std::vector<std::string> names;
    ~Cleanup() {
        for (const auto& n : names) {
            std::filesystem::remove("/dev/shm/" + n);
        }
    }
};

}  // namespace

TEST_CASE("after a kill -9 the daemon takes its segments back and unlinks those whose owner died meanwhile",
          "[e2e][shm]") {
    DaemonFixture d;
    Cleanup cleanup{{segment("live"), segment("dead"), segment("keep"), segment("ttl")}};
    BackgroundProcess live_owner({"sleep", "3600"}, {}, false);
    BackgroundProcess dying_owner({"sleep", "3600"}, {}, false);
    REQUIRE(d.mpctl({"shm", "create", segment("live"), "--size", "8", "--owner-pid",
                     std::to_string(live_owner.pid())})
                .exit_code == 0);
    REQUIRE(d.mpctl({"shm", "create", segment("dead"), "--size", "8", "--owner-pid",
                     std::to_string(dying_owner.pid())})
                .exit_code == 0);
    REQUIRE(d.mpctl({"shm", "create", segment("keep"), "--size", "8", "--persist"}).exit_code == 0);
    REQUIRE(d.mpctl({"shm", "create", segment("ttl"), "--size", "8", "--ttl", "3600"}).exit_code == 0);

    d.kill9();
    dying_owner.signal(SIGKILL);
    REQUIRE(dying_owner.wait(60s));
    CHECK(segment_exists(segment("dead")));  // nobody was there to unlink it
    d.start();
    auto names = registered(d);
    INFO(d.log());
    CHECK(std::find(names.begin(), names.end(), segment("live")) != names.end());
    CHECK(std::find(names.begin(), names.end(), segment("keep")) != names.end());
    CHECK(std::find(names.begin(), names.end(), segment("ttl")) != names.end());
    CHECK(std::find(names.begin(), names.end(), segment("dead")) == names.end());
    CHECK_FALSE(segment_exists(segment("dead")));

    // The lease taken back still holds: the owner's death unlinks the segment.
    live_owner.signal(SIGKILL);
    CHECK(eventually([&] { return !segment_exists(segment("live")); }, 30s));

    // A stop unlinks what is leased and keeps what persists, which the next start takes back.
    REQUIRE(d.stop() == 0);
    CHECK_FALSE(segment_exists(segment("ttl")));
    CHECK(segment_exists(segment("keep")));
    d.start();
    names = registered(d);
    CHECK(names == std::vector<std::string>{segment("keep")});
    CHECK(d.mpctl({"shm", "unlink", segment("keep")}).exit_code == 0);
}
