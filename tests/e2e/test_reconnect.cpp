// Clients that wait or follow survive a crash of the serving daemon (issue 20): under `mpctld --supervise`,
// kill -9 of the daemon (not of the supervisor) ends their connection; `run`, `logs --follow`, `wait` and
// `result` connect again once the supervisor has started a new daemon, ask again for what they do not know
// yet, and finish as if nothing had happened: the task's exit code, every byte of its output exactly once.
// A daemon stopped on purpose does not come back, is not started by the waiting client, and the client
// fails once MPCTL_RECONNECT_TIMEOUT has passed, saying how long it waited.

#include <signal.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {
namespace reconnect_test {

// Kills the serving daemon with -9 and waits (generously) for the supervisor's next one to answer.
void crash_and_wait_for_restart(DaemonFixture& d) {
    // The task's start journaled first (a few ms after it happens): killed before that, the daemon would
    // come back with the task pending and run it again.
    d.sync_journal("default", 2);
    pid_t first = serving_pid(d);
    REQUIRE(first != d.pid());  // the daemon, not the supervisor
    REQUIRE(::kill(first, SIGKILL) == 0);
    wait_for_new_daemon(d, first);
}

// A task that prints "before", waits for GO1 (touched while the daemon is down, so that "middle" is written
// then), prints "middle", waits for GO2, prints "after" and exits 3.
// PREFIX, then "--" and that task's command line.
std::vector<std::string> three_lines(const TempDir& t, std::vector<std::string> prefix = {}) {
    prefix.insert(prefix.end(), {"--", "sh", "-c",
                                 "echo before; " + sh_wait_for(t / "GO1") + "; echo middle; " +
                                     sh_wait_for(t / "GO2") + "; echo after; exit 3"});
    return prefix;
}

const std::string k_three_lines = "before\nmiddle\nafter\n";

// Waits (generously) for a client started with mpctl_in_background to have printed the task's first line.
void saw_first_line(const TempDir& t) {
    REQUIRE(wait_for_file(t / "out"));
    REQUIRE(eventually([&] { return slurp(t / "out") == "before\n"; }));
}

// Waits (generously) for the client CLIENT, whose stderr is ERR_PATH, to end; its exit code. It must have
// said it was reconnecting.
int ended_after_reconnecting(BackgroundProcess& client, const std::string& err_path, const DaemonFixture& d) {
    auto r = client.wait(std::chrono::seconds(120));
    REQUIRE(r);
    std::string err = slurp(err_path);
    INFO(err);
    INFO(d.log());
    CHECK_THAT(err, Contains("reconnecting"));
    CHECK(err.find("reconnecting") == err.rfind("reconnecting"));  // once
    return r->exit_code;
}

// Whether process PID sits in poll(2): an mpctl that has sent its request and waits for the answer.
bool waits_in_poll(pid_t pid) {
    return slurp("/proc/" + std::to_string(pid) + "/wchan").find("poll") != std::string::npos;
}

// The crash, with the task writing "middle" while no daemon serves, then "after" once one does.
void crash_under_client(DaemonFixture& d, const TempDir& t) {
    crash_and_wait_for_restart(d);
    touch(t / "GO1");
    touch(t / "GO2");
}

}  // namespace reconnect_test
}  // namespace

TEST_CASE(
    "mpctl run reconnects after kill -9 of its daemon and ends with every byte once and the task's exit code",
    "[e2e][reconnect]") {
    using namespace reconnect_test;  // here: the e2e tests are one unity build
    DaemonFixture d(supervised());
    TempDir t;
    auto run = mpctl_in_background(d, three_lines(t, {"run"}), t / "out", t / "err");
    saw_first_line(t);
    crash_under_client(d, t);
    CHECK(ended_after_reconnecting(*run, t / "err", d) == 3);
    CHECK(slurp(t / "out") == k_three_lines);
}

TEST_CASE("mpctl run takes its task back after a reconnect: killed from then on, it hangs the task up",
          "[e2e][reconnect]") {
    using namespace reconnect_test;
    DaemonFixture d(supervised());
    TempDir t;
    // "after" is written once the daemon is back, so it reaches mpctl only through the stream it asked for
    // after connecting again, and after taking the task back (task.attach comes first).
    auto run = mpctl_in_background(d,
                                   {"run", "--", "sh", "-c",
                                    "trap 'echo hup > " + t / "HUP" + "; exit 7' HUP; echo before; " +
                                        sh_wait_for(t / "GO") + "; echo after; while :; do sleep 0.05; done"},
                                   t / "out", t / "err");
    saw_first_line(t);
    int64_t id = d.mpctl_json({"list", "--limit", "1"})["id"].get<int64_t>();
    crash_and_wait_for_restart(d);
    touch(t / "GO");
    REQUIRE(eventually([&] { return slurp(t / "out") == "before\nafter\n"; }));
    // mpctl dies as a closed terminal takes it: the connection it attached the task to closes.
    run->signal(SIGKILL);
    REQUIRE(run->wait(std::chrono::seconds(60)));
    json s = d.wait_for_state(id, "failed");
    INFO(s.dump());
    CHECK(s["exit_code"] == 7);
    CHECK(slurp(t / "HUP") == "hup\n");
}

TEST_CASE("mpctl logs --follow reconnects after kill -9 of its daemon and prints every byte once",
          "[e2e][reconnect]") {
    using namespace reconnect_test;  // here: the e2e tests are one unity build
    DaemonFixture d(supervised());
    TempDir t;
    int64_t id = d.submit(three_lines(t));
    auto follow = mpctl_in_background(d, {"logs", "--follow", str(id)}, t / "out", t / "err");
    saw_first_line(t);
    crash_under_client(d, t);
    CHECK(ended_after_reconnecting(*follow, t / "err", d) == 0);
    CHECK(slurp(t / "out") == k_three_lines);
    CHECK(d.status(id)["exit_code"] == 3);
}

TEST_CASE("mpctl wait and mpctl result reconnect after kill -9 of their daemon", "[e2e][reconnect]") {
    using namespace reconnect_test;  // here: the e2e tests are one unity build
    DaemonFixture d(supervised());
    TempDir t;
    int64_t id = d.submit(three_lines(t));
    d.wait_for_state(id, "running");
    auto wait = mpctl_in_background(d, {"wait", str(id)}, t / "wait.out", t / "wait.err");
    auto result = mpctl_in_background(d, {"result", str(id)}, t / "result.out", t / "result.err");
    REQUIRE(eventually([&] { return waits_in_poll(wait->pid()) && waits_in_poll(result->pid()); }));
    crash_under_client(d, t);
    CHECK(ended_after_reconnecting(*wait, t / "wait.err", d) == 3);
    CHECK(slurp(t / "wait.out").empty());
    CHECK(ended_after_reconnecting(*result, t / "result.err", d) == 3);
    CHECK(slurp(t / "result.out") == k_three_lines);
}

TEST_CASE("a client waiting on a daemon stopped on purpose does not start one and fails at its deadline",
          "[e2e][reconnect]") {
    using namespace reconnect_test;  // here: the e2e tests are one unity build
    DaemonFixture d(supervised());
    TempDir t;
    // Waiting for its retry, an hour away: a stop leaves it queued (no running task to let finish), so the
    // wait is never answered.
    int64_t id = d.submit({"--retries", "1", "--retry-delay", "1h", "--", "sh", "-c", "exit 1"});
    REQUIRE(eventually([&] {
        json s = d.status(id);
        return s["attempts"] == 1 && s["state"] == "pending";
    }));
    ProcessOptions o;
    o.env_set["MPCTL_RECONNECT_TIMEOUT"] = "2";
    o.env_unset.push_back("MPCTL_NO_AUTOSTART");  // even allowed to autostart, a reconnect never does
    auto wait = mpctl_in_background(d, {"wait", str(id)}, t / "out", t / "err", o);
    REQUIRE(eventually([&] { return waits_in_poll(wait->pid()); }));
    auto stopped = d.mpctl({"daemon", "stop"});
    INFO(stopped.err);
    CHECK(stopped.exit_code == 0);
    auto r = wait->wait(std::chrono::seconds(120));
    REQUIRE(r);
    std::string err = slurp(t / "err");
    INFO(err);
    CHECK(r->exit_code == 1);  // as before reconnecting existed: a failure of mpctl, not the task's code
    CHECK_THAT(err, Contains("reconnecting"));
    CHECK_THAT(err, Contains("waited 2 s for the daemon to come back"));
    CHECK_FALSE(socket_answers(d.socket()));
}
