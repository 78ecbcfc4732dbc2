// The daemon's lifecycle: one daemon per state dir, daemon status, the three ways to stop (wait, --now,
// --cancel-pending), SIGTERM, autostart (and turning it off), and the socket's permissions.

#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

TEST_CASE("a second mpctld on the same state dir exits 3 with a clear message", "[e2e][daemon]") {
    DaemonFixture d;
    TempDir other;
    auto r = run_process({mpctld_bin(), "--foreground", "--exit-with-parent", "--socket",
                          other / "second.sock", "--state-dir", d.state_dir()},
                         ProcessOptions{{}, {}, "", "", std::chrono::seconds(60), ""});
    INFO(r.err);
    CHECK(r.exit_code == 3);
    CHECK_THAT(r.err, Contains("another mpctld"));
    CHECK_THAT(r.err, Contains(d.state_dir()));
    CHECK_FALSE(exists(other / "second.sock"));
    // The first one is unharmed.
    CHECK(d.running());
    CHECK(d.mpctl({"daemon", "status"}).exit_code == 0);
}

TEST_CASE("daemon status shows a running daemon and exits 3 when none runs", "[e2e][daemon]") {
    DaemonFixture d;
    auto r = d.mpctl({"daemon", "status"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Contains(std::to_string(d.pid())));
    CHECK_THAT(r.out, Contains(d.socket()));
    json j = d.mpctl_json({"daemon", "status"});
    CHECK(j["pid"] == d.pid());
    CHECK(j["socket"] == d.socket());
    CHECK(j["state_dir"] == d.state_dir());
    CHECK(j["stopping"] == false);
    CHECK(j["tasks"].is_object());

    CHECK(d.stop() == 0);
    auto down = d.mpctl({"daemon", "status"});
    CHECK(down.exit_code == 3);
    CHECK_THAT(down.err, Contains("mpctl: "));
}

TEST_CASE("the answer to daemon.stop reaches its client even when it was queued behind another answer",
          "[e2e][daemon]") {
    // Pipelined behind daemon.status, the stop's answer waits in the connection's queue while the status
    // answer's write completes. The daemon waited only until the queue was below 512 KiB, true at once, and
    // its loop ended with the stop's answer unwritten.
    for (int i = 0; i < 5; ++i) {
        DaemonFixture d;
        auto c = d.connect();
        c->send_raw(R"({"jsonrpc":"2.0","id":"status","method":"daemon.status"})"
                    "\n"
                    R"({"jsonrpc":"2.0","id":"stop","method":"daemon.stop"})"
                    "\n");
        std::vector<json> replies;
        while (auto line = c->read_line()) {
            replies.push_back(json::parse(*line));
        }
        INFO("round " << i << ": " << json(replies).dump());
        REQUIRE(replies.size() == 2);
        CHECK(replies[0]["id"] == "status");
        CHECK(replies[1]["id"] == "stop");
        CHECK(replies[1]["result"]["stopped"] == true);
        CHECK(eventually([&] { return !d.running(); }));  // and it goes by itself
    }
}

TEST_CASE("daemon stop waits for running tasks and keeps pending ones queued for the next start",
          "[e2e][daemon]") {
    DaemonFixture d;
    TempDir t;
    REQUIRE(d.mpctl({"pool", "set", "solo", "--workers", "1"}).exit_code == 0);
    int64_t running =
        d.submit({"--pool", "solo", "--", "sh", "-c", sh_wait_for(t / "GO") + "; echo finished"});
    d.wait_for_state(running, "running");
    int64_t queued = d.submit({"--pool", "solo", "--", "touch", t / "QUEUED_RAN"});
    auto stopper = mpctl_in_background(d, {"daemon", "stop"}, t / "out", t / "err");
    // It stops taking work but lets the running task go on.
    CHECK(eventually([&] { return d.mpctl_json({"daemon", "status"})["stopping"] == true; }));
    auto refused = d.mpctl({"submit", "--", "true"});
    CHECK(refused.exit_code != 0);
    CHECK(d.status(running)["state"] == "running");
    CHECK(stopper->running());
    touch(t / "GO");
    auto r = stopper->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(eventually([&] { return !d.running(); }));
    CHECK_FALSE(exists(t / "QUEUED_RAN"));

    d.start();
    json done = d.status(running);
    CHECK(done["state"] == "succeeded");
    CHECK(d.mpctl({"wait", str(queued)}).exit_code == 0);
    CHECK(exists(t / "QUEUED_RAN"));
}

TEST_CASE("daemon stop --now terminates running tasks, records them cancelled and keeps pending ones",
          "[e2e][daemon]") {
    DaemonFixture d;
    TempDir t;
    GroupReaper reaper;
    REQUIRE(d.mpctl({"pool", "set", "solo", "--workers", "1"}).exit_code == 0);
    int64_t running = d.submit({"--pool", "solo", "--", "sleep", "600"});
    json s = d.wait_for_state(running, "running");
    reaper.add(s["pid"].get<pid_t>());
    int64_t queued = d.submit({"--pool", "solo", "--", "true"});
    auto r = d.mpctl({"daemon", "stop", "--now"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(eventually([&] { return !d.running(); }));
    CHECK(eventually([&] { return live_group_members(s["pid"].get<pid_t>()).empty(); }));

    d.start();
    json after = d.status(running);
    CHECK(after["state"] == "cancelled");
    CHECK(d.mpctl({"wait", str(queued)}).exit_code == 0);
}

TEST_CASE("daemon stop --now --kill-after escalates to SIGKILL for a task that ignores SIGTERM",
          "[e2e][daemon]") {
    DaemonFixture d;
    TempDir t;
    GroupReaper reaper;
    int64_t stubborn = d.submit(
        {"--", "sh", "-c", "trap '' TERM; touch " + (t / "ready") + "; while :; do sleep 0.05; done"});
    json s = d.wait_for_state(stubborn, "running");
    pid_t pgid = s["pid"].get<pid_t>();
    reaper.add(pgid);
    REQUIRE(wait_for_file(t / "ready"));
    auto r = d.mpctl({"daemon", "stop", "--now", "--kill-after", "0.2"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(eventually([&] { return !d.running(); }));
    CHECK(eventually([&] { return live_group_members(pgid).empty(); }));
    d.start();
    json after = d.status(stubborn);
    CHECK(after["state"] == "cancelled");
}

TEST_CASE("daemon stop --cancel-pending cancels the queue and lets running tasks finish", "[e2e][daemon]") {
    DaemonFixture d;
    TempDir t;
    REQUIRE(d.mpctl({"pool", "set", "solo", "--workers", "1"}).exit_code == 0);
    int64_t running = d.submit({"--pool", "solo", "--", "sh", "-c", sh_wait_for(t / "GO")});
    d.wait_for_state(running, "running");
    int64_t queued = d.submit({"--pool", "solo", "--", "touch", t / "QUEUED_RAN"});
    auto stopper = mpctl_in_background(d, {"daemon", "stop", "--cancel-pending"}, t / "out", t / "err");
    json cancelled = d.wait_for_state(queued, "cancelled");
    CHECK(cancelled["state"] == "cancelled");
    CHECK(d.status(running)["state"] == "running");
    touch(t / "GO");
    auto r = stopper->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(eventually([&] { return !d.running(); }));

    d.start();
    CHECK(d.status(running)["state"] == "succeeded");
    CHECK(d.status(queued)["state"] == "cancelled");
    CHECK_FALSE(exists(t / "QUEUED_RAN"));
}

TEST_CASE("daemon stop --now --cancel-pending cancels everything", "[e2e][daemon]") {
    DaemonFixture d;
    REQUIRE(d.mpctl({"pool", "set", "solo", "--workers", "1"}).exit_code == 0);
    int64_t running = d.submit({"--pool", "solo", "--", "sleep", "600"});
    d.wait_for_state(running, "running");
    int64_t queued = d.submit({"--pool", "solo", "--", "true"});
    CHECK(d.mpctl({"daemon", "stop", "--now", "--cancel-pending"}).exit_code == 0);
    CHECK(eventually([&] { return !d.running(); }));
    d.start();
    CHECK(d.status(running)["state"] == "cancelled");
    CHECK(d.status(queued)["state"] == "cancelled");
}

TEST_CASE("SIGTERM to mpctld acts as daemon stop --now", "[e2e][daemon]") {
    DaemonFixture d;
    GroupReaper reaper;
    REQUIRE(d.mpctl({"pool", "set", "solo", "--workers", "1"}).exit_code == 0);
    int64_t running = d.submit({"--pool", "solo", "--", "sleep", "600"});
    json s = d.wait_for_state(running, "running");
    pid_t pgid = s["pid"].get<pid_t>();
    reaper.add(pgid);
    int64_t queued = d.submit({"--pool", "solo", "--", "true"});
    CHECK(d.stop() == 0);  // SIGTERM
    CHECK(eventually([&] { return live_group_members(pgid).empty(); }));
    d.start();
    json after = d.status(running);
    CHECK(after["state"] == "cancelled");
    CHECK(d.mpctl({"wait", str(queued)}).exit_code == 0);
}

TEST_CASE("SIGINT to mpctld acts as daemon stop --now too", "[e2e][daemon]") {
    DaemonFixture d;
    GroupReaper reaper;
    int64_t running = d.submit({"--", "sleep", "600"});
    json s = d.wait_for_state(running, "running");
    reaper.add(s["pid"].get<pid_t>());
    REQUIRE(::kill(d.pid(), SIGINT) == 0);
    CHECK(eventually([&] { return !d.running(); }));
    d.start();
    CHECK(d.status(running)["state"] == "cancelled");
}

TEST_CASE("mpctl starts a daemon by itself when none answers", "[e2e][daemon]") {
    TempDir t;
    std::string state = t / "state";
    std::string socket = t / "run/mpctld.sock";  // its directory does not exist yet
    DaemonGuard guard(state);
    ProcessOptions o = autostart_options(socket, state);

    auto r = run_process({mpctl_bin(), "run", "--", "echo", "hi"}, o);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "hi\n");
    pid_t pid = guard.pid();
    CHECK(pid > 0);

    // mpctld made the socket's directory 0700 and the socket 0600.
    struct stat dir_st {};
    REQUIRE(::stat((t / "run").c_str(), &dir_st) == 0);
    CHECK((dir_st.st_mode & 07777) == 0700);
    struct stat sock_st {};
    REQUIRE(::stat(socket.c_str(), &sock_st) == 0);
    CHECK(S_ISSOCK(sock_st.st_mode));
    CHECK((sock_st.st_mode & 07777) == 0600);

    // The same daemon serves the next command; no second one is started. Detached, it is supervised: the
    // lock holds its supervisor's pid, whose child serves.
    auto status = run_process({mpctl_bin(), "--json", "daemon", "status"}, o);
    CHECK(status.exit_code == 0);
    json j = json::parse(status.out, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    CHECK(j["supervisor"]["pid"] == pid);
    CHECK(j["supervisor"]["restarts"] == 0);
    CHECK(parent_of(j["pid"].get<pid_t>()) == pid);
    CHECK(j["state_dir"] == state);

    auto stop = run_process({mpctl_bin(), "daemon", "stop"}, o);
    CHECK(stop.exit_code == 0);
    CHECK(eventually([&] { return guard.pid() == -1; }));
}

TEST_CASE("mpctld creates a missing socket directory 0700 and the socket 0600", "[e2e][daemon]") {
    TempDir t;
    std::string socket = t / "sockets/d.sock";
    BackgroundProcess daemon({mpctld_bin(), "--foreground", "--exit-with-parent", "--socket", socket,
                              "--state-dir", t / "state", "--workers", "1"},
                             {}, false);
    REQUIRE(eventually([&] { return socket_answers(socket) || !daemon.running(); }));
    // Serving (so its signal handling is in place) before it is asked to stop.
    RpcConnection conn(socket);
    REQUIRE(conn.call("daemon.status", json::object()).contains("result"));
    struct stat dir_st {};
    REQUIRE(::stat((t / "sockets").c_str(), &dir_st) == 0);
    CHECK((dir_st.st_mode & 07777) == 0700);
    struct stat sock_st {};
    REQUIRE(::stat(socket.c_str(), &sock_st) == 0);
    CHECK((sock_st.st_mode & 07777) == 0600);
    daemon.signal(SIGTERM);
    auto r = daemon.wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
}

TEST_CASE("mpctl --no-autostart and MPCTL_NO_AUTOSTART=1 exit 3 and start nothing", "[e2e][daemon]") {
    TempDir t;
    std::string state = t / "state";
    std::string socket = t / "mpctld.sock";
    DaemonGuard guard(state);

    auto flag = run_process({mpctl_bin(), "--no-autostart", "run", "--", "echo", "hi"},
                            autostart_options(socket, state));
    INFO(flag.err);
    CHECK(flag.exit_code == 3);
    CHECK(flag.out.empty());

    ProcessOptions env = autostart_options(socket, state);
    env.env_set["MPCTL_NO_AUTOSTART"] = "1";
    auto by_env = run_process({mpctl_bin(), "submit", "--", "echo", "hi"}, env);
    INFO(by_env.err);
    CHECK(by_env.exit_code == 3);

    CHECK_FALSE(exists(socket));
    CHECK(guard.pid() == -1);
}
