// The daemon's configuration file, who may talk to it (SO_PEERCRED), and `cmake --install`.

#include <filesystem>
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

TEST_CASE("a client of another uid is refused even when it can reach the socket", "[e2e][security]") {
    if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0 ||
        ::access("/usr/bin/python3", X_OK) != 0) {
        WARN("needs root, setpriv and /usr/bin/python3 to connect as another user; not checked here");
        return;
    }
    DaemonFixture d;
    // The other user must be able to walk down to the socket: every directory above the fixture's (the
    // test run's $TMPDIR and its parents) has to be searchable by others. .ci/run makes its own so.
    for (auto p = std::filesystem::path(d.dir().path()).parent_path(); p != p.root_path();
         p = p.parent_path()) {
        struct stat st {};
        INFO(p.string() << " is not searchable by other users: give it o+x, or point TMPDIR elsewhere");
        REQUIRE((::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) != 0));
    }
    // Open the way on purpose (the daemon makes it 0700/0600): only SO_PEERCRED is left to say no.
    ::chmod(d.dir().path().c_str(), 0777);
    ::chmod(d.socket().c_str(), 0666);
    // The daemon answers a refused peer at once and hangs up: read that answer (sending first could meet
    // the closed socket).
    std::string probe =
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        "print(s.makefile().readline(), end='')\n";
    auto r = run_process({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          "/usr/bin/python3", "-c", probe, d.socket()});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    json reply = json::parse(r.out);
    CHECK(reply["error"]["code"] == -32004);
    CHECK(reply["error"]["data"]["error"] == "refused");
    CHECK_FALSE(reply.contains("result"));
    // The daemon's own user is still served.
    CHECK(d.mpctl({"daemon", "status"}).exit_code == 0);
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
