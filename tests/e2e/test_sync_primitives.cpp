// mpctl sem, event and barrier (issue 14): semaphores leased like locks (a SIGKILLed owner's unit comes
// back, limits fixed while in use, a deadlock through a full semaphore refused), events set, cleared and
// waited for, barriers that let N through together or break on a timeout. Owners are real processes; waits
// are for states the daemon reports, never sleeps.

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

json semaphore(const DaemonFixture& d, const std::string& name) {
    auto sems = d.mpctl_ndjson({"sem", "list", name});
    REQUIRE(sems.size() == 1);
    return sems[0];
}

}  // namespace

TEST_CASE("a semaphore grants up to its limit, leases each unit, and a killed owner's unit comes back",
          "[e2e][sync]") {
    DaemonFixture d;
    TempDir t;
    auto a = owner(), b = owner(), c = owner();
    CHECK(d.mpctl({"sem", "acquire", "jobs", "--limit", "2", "--owner-pid", pid_of(a)}).exit_code == 0);
    CHECK(d.mpctl({"sem", "acquire", "jobs", "--limit", "2", "--owner-pid", pid_of(b)}).exit_code == 0);
    auto full = d.mpctl({"sem", "acquire", "jobs", "--limit", "2", "--owner-pid", pid_of(c), "-n"});
    CHECK(full.exit_code == 5);
    CHECK_THAT(full.err, Contains("at its limit (2)"));
    auto other_limit = d.mpctl({"sem", "acquire", "jobs", "--limit", "3", "--owner-pid", pid_of(c), "-n"});
    CHECK(other_limit.exit_code == 1);
    CHECK_THAT(other_limit.err, Contains("in use with limit 2"));
    auto waiting = mpctl_in_background(
        d, {"sem", "acquire", "jobs", "--limit", "2", "--owner-pid", pid_of(c)}, t / "out", t / "err");
    REQUIRE(eventually([&] { return semaphore(d, "jobs")["waiters"].size() == 1; }));
    a->signal(SIGKILL);
    auto r = waiting->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    json s = semaphore(d, "jobs");
    REQUIRE(s["holders"].size() == 2);
    CHECK(s["holders"][1]["pid"] == c->pid());
    // Release gives back one unit of the owner's.
    CHECK(d.mpctl({"sem", "release", "jobs", "--owner-pid", pid_of(b)}).exit_code == 0);
    CHECK(semaphore(d, "jobs")["holders"].size() == 1);
    CHECK(d.mpctl({"sem", "release", "jobs", "--owner-pid", pid_of(b)}).exit_code == 4);
    CHECK(d.mpctl({"sem", "release", "jobs", "--owner-pid", pid_of(c)}).exit_code == 0);
    CHECK(d.mpctl_ndjson({"sem", "list"}).empty());  // nobody holds or waits: forgotten
}

TEST_CASE("asking a full semaphore for more when every unit is one's own is refused as a deadlock",
          "[e2e][sync]") {
    DaemonFixture d;
    auto a = owner(), b = owner();
    for (int i = 0; i < 2; ++i) {
        REQUIRE(d.mpctl({"sem", "acquire", "pair", "--limit", "2", "--owner-pid", pid_of(a)}).exit_code == 0);
    }
    auto refused = d.mpctl({"sem", "acquire", "pair", "--limit", "2", "--owner-pid", pid_of(a)});
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.err, Contains("deadlock"));
    // With another holder that could still let go, waiting is no deadlock: it times out instead.
    REQUIRE(d.mpctl({"sem", "release", "pair", "--owner-pid", pid_of(a)}).exit_code == 0);
    REQUIRE(d.mpctl({"sem", "acquire", "pair", "--limit", "2", "--owner-pid", pid_of(b)}).exit_code == 0);
    auto waits =
        d.mpctl({"sem", "acquire", "pair", "--limit", "2", "--owner-pid", pid_of(a), "--timeout", "0.2"});
    CHECK(waits.exit_code == 124);
}

TEST_CASE("an event wakes every waiter when set, answers at once while set, and waits again once cleared",
          "[e2e][sync]") {
    DaemonFixture d;
    TempDir t;
    std::vector<std::unique_ptr<BackgroundProcess>> waiters;
    for (int i = 0; i < 3; ++i) {
        waiters.push_back(mpctl_in_background(d, {"event", "wait", "ready"}, t / ("out" + std::to_string(i)),
                                              t / ("err" + std::to_string(i))));
    }
    REQUIRE(eventually([&] {
        auto events = d.mpctl_ndjson({"event", "list", "ready"});
        return events.size() == 1 && events[0]["waiters"] == 3;
    }));
    for (auto& w : waiters) {
        CHECK(w->running());
    }
    json set = d.mpctl_json({"event", "set", "ready"});
    CHECK(set["woken"] == 3);
    for (auto& w : waiters) {
        auto r = w->wait(60s);
        REQUIRE(r);
        CHECK(r->exit_code == 0);
    }
    CHECK(d.mpctl({"event", "wait", "ready", "--timeout", "60"}).exit_code == 0);  // set: at once
    CHECK(d.mpctl({"event", "clear", "ready"}).exit_code == 0);
    auto late = d.mpctl({"event", "wait", "ready", "--timeout", "0.2"});
    CHECK(late.exit_code == 124);
    CHECK(d.mpctl_ndjson({"event", "list"}).empty());
}

TEST_CASE("a barrier lets its parties through together, each with its arrival index, and a timeout breaks it",
          "[e2e][sync]") {
    DaemonFixture d;
    TempDir t;
    std::vector<std::unique_ptr<BackgroundProcess>> early;
    for (int i = 0; i < 2; ++i) {
        early.push_back(mpctl_in_background(d, {"barrier", "wait", "start", "--parties", "3"},
                                            t / ("out" + std::to_string(i)),
                                            t / ("err" + std::to_string(i))));
        REQUIRE(eventually([&] {
            auto b = d.mpctl_ndjson({"barrier", "list", "start"});
            return b.size() == 1 && b[0]["waiting"].size() == static_cast<size_t>(i + 1);
        }));
    }
    auto wrong = d.mpctl({"barrier", "wait", "start", "--parties", "4"});
    CHECK(wrong.exit_code == 1);
    CHECK_THAT(wrong.err, Contains("in use with 3 parties"));
    auto last = d.mpctl({"barrier", "wait", "start", "--parties", "3"});
    CHECK(last.exit_code == 0);
    CHECK(last.out == "2\n");
    for (int i = 0; i < 2; ++i) {
        auto r = early[static_cast<size_t>(i)]->wait(60s);
        REQUIRE(r);
        CHECK(r->exit_code == 0);
        CHECK(slurp(t / ("out" + std::to_string(i))) == std::to_string(i) + "\n");
    }
    CHECK(d.mpctl_ndjson({"barrier", "list"}).empty());  // free for the next round

    // Broken: one waits without a timeout, the other gives up.
    auto patient =
        mpctl_in_background(d, {"barrier", "wait", "b2", "--parties", "3"}, t / "pout", t / "perr");
    REQUIRE(eventually([&] { return d.mpctl_ndjson({"barrier", "list", "b2"}).size() == 1; }));
    auto impatient = d.mpctl({"barrier", "wait", "b2", "--parties", "3", "--timeout", "0.2"});
    CHECK(impatient.exit_code == 124);
    auto r = patient->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 1);
    CHECK_THAT(slurp(t / "perr"), Contains("broken"));
}
