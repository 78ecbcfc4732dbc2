// The daemon's configuration file and `cmake --install` (who may talk to it: test_peer_access.cpp).

#include <filesystem>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

TEST_CASE("the config file sizes the default pool and named pools", "[e2e][config]") {
    TempDir cfg;
    std::string path = cfg.write("mpctld.toml",
                                 "workers = 3\n"
                                 "log_level = \"warn\"\n"
                                 "durability = \"full\"\n"
                                 "[pools.gpu]\n"
                                 "workers = 1\n");
    DaemonFixture d(DaemonOptions{0, {"--config", path}, {}, {}});
    json status = d.mpctl_json({"daemon", "status"});
    CHECK(status["workers"] == 3);
    CHECK(status["durability"] == "full");
    bool gpu = false;
    for (const auto& p : d.mpctl_ndjson({"pool", "list"})) {
        if (p["name"] == "gpu") {
            gpu = true;
            CHECK(p["workers"] == 1);
        }
    }
    CHECK(gpu);
}

TEST_CASE("command-line flags win over the config file", "[e2e][config]") {
    TempDir cfg;
    std::string path = cfg.write("mpctld.toml", "workers = 3\n");
    DaemonFixture d(DaemonOptions{5, {"--config", path}, {}, {}});
    CHECK(d.mpctl_json({"daemon", "status"})["workers"] == 5);
}

TEST_CASE("a bad config file stops mpctld with a message naming the setting", "[e2e][config]") {
    TempDir t;
    auto start = [&](const std::string& content) {
        std::string path = t.write("bad.toml", content);
        return run_process({mpctld_bin(), "--foreground", "--socket", t / "s.sock", "--state-dir",
                            t / "state", "--config", path});
    };
    auto r = start("workers = \"many\"\n");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("workers"));
    r = start("wrokers = 4\n");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("wrokers"));
    r = start("[pools.gpu]\nworkers = 0\n");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("pools.gpu"));
    r = start("this is not toml [\n");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("line 1"));
    // A --config that does not exist is an error; the default path may be missing.
    auto missing = run_process({mpctld_bin(), "--foreground", "--socket", t / "s.sock", "--state-dir",
                                t / "state", "--config", t / "nope.toml"});
    CHECK(missing.exit_code == 2);
    CHECK_THAT(missing.err, Contains("nope.toml"));
}

TEST_CASE("mpctld --check-config says ok to a good config file and exits 0", "[e2e][config]") {
    TempDir t;
    std::string path = t.write("mpctld.toml",
                               "workers = 2\n"
                               "log_max_size = \"1M\"\n"
                               "log_keep = 4\n"
                               "socket = \"/nonexistent/mpctld.sock\"\n"
                               "state_dir = \"/nonexistent/state\"\n"
                               "[pools.gpu]\n"
                               "workers = 1\n");
    auto r = run_process({mpctld_bin(), "--check-config", path});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == path + ": ok\n");
    // Nothing was started, nothing made.
    CHECK_FALSE(exists("/nonexistent"));
}

TEST_CASE("mpctld --check-config names the file, line and key of what is wrong and exits 2",
          "[e2e][config]") {
    TempDir t;
    auto check = [&](const std::string& content) {
        return run_process({mpctld_bin(), "--check-config", t.write("mpctld.toml", content)});
    };
    const std::string file = "mpctld: config file " + (t / "mpctld.toml");
    auto bad_value = check("# pool sizes\nlog_level = \"info\"\nworkers = 0\n");
    CHECK(bad_value.exit_code == 2);
    CHECK(bad_value.out.empty());
    CHECK(bad_value.err == file + ", line 3: workers must be an integer from 1 to 100000\n");

    auto unknown = check("workers = 2\n\nworkres = 3\n");
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.err == file + ", line 3: unknown setting \"workres\" (did you mean \"workers\"?)\n");

    auto syntax = check("workers = 2\nlog_level = \"info\n");
    CHECK(syntax.exit_code == 2);
    CHECK_THAT(syntax.err, Catch::Matchers::StartsWith(file + ", line 2: "));

    auto missing = run_process({mpctld_bin(), "--check-config", t / "nope.toml"});
    CHECK(missing.exit_code == 2);
    CHECK(missing.err == "mpctld: config file " + (t / "nope.toml") + ": No such file or directory\n");

    // A start refuses the same file with the same message.
    std::string bad = t.write("bad.toml", "\nworkers = \"many\"\n");
    auto start = run_process({mpctld_bin(), "--foreground", "--socket", t / "s.sock", "--state-dir",
                              t / "state", "--config", bad});
    CHECK(start.exit_code == 2);
    CHECK(start.err ==
          "mpctld: config file " + bad + ", line 2: workers must be an integer from 1 to 100000\n");
}

TEST_CASE("the socket and state dir can be set in the config file, and flags win over it", "[e2e][config]") {
    TempDir t;
    std::string path = t.write("mpctld.toml", "socket = \"" + (t / "file.sock") + "\"\nstate_dir = \"" +
                                                  (t / "file-state") + "\"\n");
    ProcessOptions o;
    o.env_unset = {"MPCTL_SOCKET", "MPCTL_STATE_DIR", "NOTIFY_SOCKET", "INVOCATION_ID"};
    {
        BackgroundProcess daemon(
            {mpctld_bin(), "--foreground", "--exit-with-parent", "--workers", "1", "--config", path}, o,
            false);
        REQUIRE(eventually([&] { return socket_answers(t / "file.sock") || !daemon.running(); }));
        RpcConnection conn(t / "file.sock");
        json status = conn.call("daemon.status", json::object());
        CHECK(status["result"]["state_dir"] == t / "file-state");
        daemon.signal(SIGTERM);
        auto r = daemon.wait(60s);
        REQUIRE(r);
        CHECK(r->exit_code == 0);
    }
    BackgroundProcess daemon({mpctld_bin(), "--foreground", "--exit-with-parent", "--workers", "1",
                              "--config", path, "--socket", t / "flag.sock", "--state-dir", t / "flag-state"},
                             o, false);
    REQUIRE(eventually([&] { return socket_answers(t / "flag.sock") || !daemon.running(); }));
    RpcConnection conn(t / "flag.sock");
    CHECK(conn.call("daemon.status", json::object())["result"]["state_dir"] == t / "flag-state");
    CHECK_FALSE(exists(t / "file.sock"));
    daemon.signal(SIGTERM);
    auto r = daemon.wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
}

TEST_CASE("cmake --install puts mpctld and mpctl in PREFIX/bin, and they work from there", "[e2e][install]") {
    TempDir prefix;
    auto r = run_process({"cmake", "--install", MPCTL_TEST_BINARY_DIR, "--prefix", prefix.path()});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    for (const char* bin : {"bin/mpctld", "bin/mpctl"}) {
        CHECK(::access((prefix / bin).c_str(), X_OK) == 0);
    }
    CHECK(std::filesystem::exists(prefix / "lib/systemd/system/mpctld.service"));
    // The installed mpctl starts the installed mpctld next to it.
    TempDir run;
    ProcessOptions o;
    o.env_set = {{"MPCTL_SOCKET", run / "s.sock"}, {"MPCTL_STATE_DIR", run / "state"}};
    o.env_unset = {"MPCTL_NO_AUTOSTART"};
    auto hello = run_process({prefix / "bin/mpctl", "run", "--", "echo", "installed"}, o);
    auto stop = run_process({prefix / "bin/mpctl", "--no-autostart", "daemon", "stop", "--now"}, o);
    CHECK(hello.exit_code == 0);
    CHECK(hello.out == "installed\n");
    CHECK(stop.exit_code == 0);
}
