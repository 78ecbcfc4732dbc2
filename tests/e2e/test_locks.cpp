// mpctl lock (issue 14) among the daemon's own clients: leases to a process (killed with SIGKILL), to a
// time, shared and exclusive, timeouts, first come first served, fencing tokens across a restart, deadlocks
// refused, tasks that never inherit a lock, and bad input. Owners are real processes (`sleep`) the test
// starts and kills; waits are for states the daemon reports (`lock list`), never sleeps. The interplay with
// flock(1) and Python's filelock is tests/e2e/test_lock_interop.py.

#include <sys/file.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

// `mpctl lock list PATH --json`: that file's entry.
json listed(const DaemonFixture& d, const std::string& path) {
    auto locks = d.mpctl_ndjson({"lock", "list", path});
    REQUIRE(locks.size() == 1);
    return locks[0];
}

// Whether a process of this test could take the lock on PATH now (flock(2) on its own open file).
bool free_for_others(const std::string& path, bool shared = false) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    bool ok = ::flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0;
    ::close(fd);
    return ok;
}

ProcessResult acquire(const DaemonFixture& d, const std::string& path, const std::string& owner_pid,
                      std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"lock", "acquire", path, "--owner-pid", owner_pid};
    args.insert(args.end(), extra.begin(), extra.end());
    return d.mpctl(args);
}

}  // namespace

TEST_CASE("a lock leased to a process is released when it is killed with SIGKILL", "[e2e][locks]") {
    DaemonFixture d;
    TempDir t;
    std::string path = t / "a.lock";
    auto a = owner();
    REQUIRE(acquire(d, path, pid_of(a)).exit_code == 0);
    CHECK_FALSE(free_for_others(path));
    json l = listed(d, path);
    REQUIRE(l["holders"].size() == 1);
    CHECK(l["holders"][0]["pid"] == a->pid());
    CHECK(l["holders"][0]["lease"]["kind"] == "process");
    a->signal(SIGKILL);
    CHECK(eventually([&] { return free_for_others(path); }, 30s));
    CHECK(listed(d, path)["holders"].empty());
    // An owner that does not exist is refused as unknown.
    auto gone = acquire(d, path, pid_of(a));
    CHECK(gone.exit_code == 4);
    CHECK_THAT(gone.err, Contains("no process"));
}

TEST_CASE("a lock with --ttl is released when its time runs out, or before by release", "[e2e][locks]") {
    DaemonFixture d;
    TempDir t;
    std::string path = t / "ttl.lock";
    auto a = owner();
    // A long TTL first: listed as a ttl lease however slowly mpctl starts (0.3 s under ASan).
    REQUIRE(acquire(d, path, pid_of(a), {"--ttl", "600"}).exit_code == 0);
    CHECK(listed(d, path)["holders"][0]["lease"]["kind"] == "ttl");
    CHECK_FALSE(free_for_others(path));
    CHECK(d.mpctl({"lock", "release", path, "--owner-pid", pid_of(a)}).exit_code == 0);
    CHECK(free_for_others(path));
    CHECK(d.mpctl({"lock", "release", path, "--owner-pid", pid_of(a)}).exit_code == 4);  // nothing held
    REQUIRE(acquire(d, path, pid_of(a), {"--ttl", "0.3"}).exit_code == 0);
    CHECK(eventually([&] { return free_for_others(path); }, 30s));
}

TEST_CASE("shared holders coexist, an exclusive one waits, and --nonblock and --timeout give up",
          "[e2e][locks]") {
    DaemonFixture d;
    TempDir t;
    std::string path = t / "rw.lock";
    auto a = owner(), b = owner(), c = owner();
    REQUIRE(acquire(d, path, pid_of(a), {"--shared"}).exit_code == 0);
    REQUIRE(acquire(d, path, pid_of(b), {"--shared", "--nonblock"}).exit_code == 0);
    CHECK(free_for_others(path, true));
    CHECK_FALSE(free_for_others(path));
    auto busy = acquire(d, path, pid_of(c), {"--nonblock"});
    CHECK(busy.exit_code == 5);
    CHECK_THAT(busy.err, Contains("is locked"));
    auto late = acquire(d, path, pid_of(c), {"--timeout", "0.2"});
    CHECK(late.exit_code == 124);
    CHECK(listed(d, path)["waiters"].empty());  // the timed-out wait is gone
    CHECK(listed(d, path)["holders"].size() == 2);
}

TEST_CASE("waiters are served first come, first served: a shared request waits behind an exclusive one",
          "[e2e][locks]") {
    DaemonFixture d;
    TempDir t;
    std::string path = t / "fifo.lock";
    auto holder = owner(), w1 = owner(), w2 = owner(), w3 = owner();
    REQUIRE(acquire(d, path, pid_of(holder), {"--shared"}).exit_code == 0);
    std::vector<std::unique_ptr<BackgroundProcess>> waits;
    size_t n = 0;
    for (auto* w : {&w1, &w2, &w3}) {
        std::vector<std::string> args{"lock", "acquire", path, "--owner-pid", pid_of(*w)};
        if (w != &w1) {
            args.emplace_back("--shared");  // compatible with the holder, but behind w1
        }
        waits.push_back(
            mpctl_in_background(d, args, t / ("out" + std::to_string(n)), t / ("err" + std::to_string(n))));
        ++n;
        REQUIRE(eventually([&] { return listed(d, path)["waiters"].size() == n; }));
    }
    json l = listed(d, path);
    CHECK(l["waiters"][0]["pid"] == w1->pid());
    CHECK(l["waiters"][1]["pid"] == w2->pid());
    REQUIRE(d.mpctl({"lock", "release", path, "--owner-pid", pid_of(holder)}).exit_code == 0);
    auto first = waits[0]->wait(60s);
    REQUIRE(first);
    CHECK(first->exit_code == 0);
    l = listed(d, path);
    REQUIRE(l["holders"].size() == 1);
    CHECK(l["holders"][0]["pid"] == w1->pid());
    CHECK(l["waiters"].size() == 2);
    // w1 goes (its process exits): both shared waiters are granted together.
    w1->signal(SIGKILL);
    for (size_t i = 1; i < 3; ++i) {
        auto r = waits[i]->wait(60s);
        REQUIRE(r);
        CHECK(r->exit_code == 0);
    }
    CHECK(listed(d, path)["holders"].size() == 2);
}

TEST_CASE("fencing tokens grow with every grant, across a restart of the daemon", "[e2e][locks]") {
    DaemonFixture d;
    TempDir t;
    auto a = owner();
    auto token = [&](const std::string& name) {
        json grant = d.mpctl_json({"lock", "acquire", t / name, "--owner-pid", pid_of(a)});
        return grant.at("token").get<int64_t>();
    };
    int64_t t1 = token("one.lock");
    int64_t t2 = token("two.lock");
    CHECK(t2 > t1);
    REQUIRE(d.stop() == 0);
    d.start();
    int64_t t3 = token("one.lock");  // free again: the daemon that held it is gone
    CHECK(t3 > t2);
    d.kill9();
    d.start();
    CHECK(token("three.lock") > t3);
}

TEST_CASE("a wait that would close a cycle is refused as a deadlock, naming it, and changes nothing",
          "[e2e][locks]") {
    DaemonFixture d;
    TempDir t;
    std::string x = t / "x.lock", y = t / "y.lock";
    auto a = owner(), b = owner();
    REQUIRE(acquire(d, x, pid_of(a)).exit_code == 0);
    REQUIRE(acquire(d, y, pid_of(b)).exit_code == 0);
    auto b_waits =
        mpctl_in_background(d, {"lock", "acquire", x, "--owner-pid", pid_of(b)}, t / "out", t / "err");
    REQUIRE(eventually([&] { return listed(d, x)["waiters"].size() == 1; }));
    auto refused = acquire(d, y, pid_of(a), {"--timeout", "600"});
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.err, Contains("deadlock"));
    CHECK_THAT(refused.err, Contains(x));
    CHECK_THAT(refused.err, Contains(y));
    CHECK(listed(d, y)["waiters"].empty());
    // Asking again for what one holds is the smallest cycle.
    auto again = acquire(d, x, pid_of(a));
    CHECK(again.exit_code == 1);
    CHECK_THAT(again.err, Contains("deadlock"));
    // Nothing changed: when a lets go of x, b gets it.
    REQUIRE(d.mpctl({"lock", "release", x, "--owner-pid", pid_of(a)}).exit_code == 0);
    auto r = b_waits->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(listed(d, x)["holders"][0]["pid"] == b->pid());
}

TEST_CASE("two connections of one process are two holders: the second waits, it is no deadlock",
          "[e2e][locks]") {
    DaemonFixture d;
    TempDir t;
    std::string path = t / "threads.lock";
    auto a = d.connect();
    auto b = d.connect();
    json held = a->call("lock.acquire", {{"path", path}, {"lease", "connection"}});
    REQUIRE(held.contains("result"));
    json waited = b->call("lock.acquire", {{"path", path}, {"lease", "connection"}, {"timeout", 0.2}});
    REQUIRE(waited.contains("error"));
    CHECK(waited["error"]["data"]["error"] == "timeout");
    // The first connection closes: what it held goes with it.
    a.reset();
    json got = b->call("lock.acquire", {{"path", path}, {"lease", "connection"}, {"timeout", 60}});
    REQUIRE(got.contains("result"));
    CHECK(got["result"]["token"].get<int64_t>() > held["result"]["token"].get<int64_t>());
}

TEST_CASE("tasks the daemon starts do not inherit the descriptors of its locks", "[e2e][locks]") {
    DaemonFixture d;
    TempDir t;
    std::string path = t / "held.lock";
    auto a = owner();
    REQUIRE(acquire(d, path, pid_of(a)).exit_code == 0);
    int64_t id = d.submit({"--", "sh", "-c", "ls -l /proc/self/fd/"});
    CHECK(d.mpctl({"wait", str(id)}).exit_code == 0);
    std::string fds = d.mpctl({"logs", str(id)}).out;
    INFO(fds);
    CHECK(fds.find("held.lock") == std::string::npos);
    CHECK(fds.find("/proc/") != std::string::npos);  // the listing itself is there
}

TEST_CASE("bad lock requests get a clear error and change nothing", "[e2e][locks]") {
    DaemonFixture d;
    TempDir t;
    auto a = owner();
    auto dir = acquire(d, t.path(), pid_of(a));
    CHECK(dir.exit_code == 6);
    CHECK_THAT(dir.err, Contains("is a directory"));
    auto both = d.mpctl({"lock", "acquire", t / "x.lock", "--nonblock", "--timeout", "1"});
    CHECK(both.exit_code == 2);
    auto unknown = d.mpctl({"lock", "release", t / "never.lock"});
    CHECK(unknown.exit_code == 4);
    CHECK_THAT(unknown.err, Contains("holds no lock on"));
    auto missing_dir = acquire(d, t / "no/such/dir/x.lock", pid_of(a));
    CHECK(missing_dir.exit_code == 1);
    CHECK_THAT(missing_dir.err, Contains("No such file or directory"));
    CHECK(d.mpctl_ndjson({"lock", "list"}).empty());
}
