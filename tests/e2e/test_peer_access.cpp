// Who may talk to the daemon: its own user and root, and, to a daemon running as root, the members of its
// group (SO_PEERCRED's gid or SO_PEERGROUPS' supplementary groups). The clients are real processes of
// another uid (setpriv), against a socket opened to everyone on purpose, so that only the daemon's check is
// left to say no.

#include <filesystem>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

bool can_switch_users() {
    return ::geteuid() == 0 && ::access("/usr/bin/setpriv", X_OK) == 0 &&
           ::access("/usr/bin/python3", X_OK) == 0;
}

// Opens the way to D's socket for every uid: every directory above it must be searchable by others (the
// test run's $TMPDIR and its parents; .ci/run makes its own so), and the daemon's own 0700/0600 is undone.
void open_socket_to_everyone(const DaemonFixture& d) {
    for (auto p = std::filesystem::path(d.dir().path()).parent_path(); p != p.root_path();
         p = p.parent_path()) {
        struct stat st {};
        INFO(p.string() << " is not searchable by other users: give it o+x, or point TMPDIR elsewhere");
        REQUIRE((::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) != 0));
    }
    ::chmod(d.dir().path().c_str(), 0777);
    ::chmod(d.socket().c_str(), 0666);
}

// One daemon.status request from a process with the credentials CREDENTIALS (setpriv's options); the
// first line the daemon answered. A refused peer is answered at once and hung up on, so the request may
// meet a closed socket: the answer is read either way.
json status_as(const DaemonFixture& d, const std::vector<std::string>& credentials) {
    std::string probe =
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        "try: s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\",\"params\":{}}\\n')\n"
        "except OSError: pass\n"
        "print(s.makefile().readline(), end='')\n";
    std::vector<std::string> argv{"/usr/bin/setpriv"};
    argv.insert(argv.end(), credentials.begin(), credentials.end());
    argv.insert(argv.end(), {"/usr/bin/python3", "-c", probe, d.socket()});
    auto r = run_process(argv);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return json::parse(r.out);
}

void check_refused(const json& reply, const std::string& why) {
    CHECK(reply["error"]["code"] == -32004);
    CHECK(reply["error"]["data"]["error"] == "refused");
    CHECK_THAT(reply["error"]["message"].get<std::string>(), Contains(why));
    CHECK_FALSE(reply.contains("result"));
}

}  // namespace

TEST_CASE("a client of another uid is refused even when it can reach the socket", "[e2e][security]") {
    if (!can_switch_users()) {
        WARN("needs root, setpriv and /usr/bin/python3 to connect as another user; not checked here");
        return;
    }
    // A group that does not exist: the machine's `mpctl` group (the package test makes one for a while)
    // would admit its members, and this daemon must serve its own user alone.
    DaemonOptions options;
    options.extra_args = {"--group", "mpctl-test-no-such-group"};
    DaemonFixture d(options);
    open_socket_to_everyone(d);
    check_refused(status_as(d, {"--reuid=65534", "--regid=65534", "--clear-groups"}), "only its own user");
    // The daemon's own user is still served.
    CHECK(d.mpctl({"daemon", "status"}).exit_code == 0);
}

TEST_CASE("a root daemon serves its group's members, by primary or supplementary group, and no one else",
          "[e2e][security]") {
    if (!can_switch_users()) {
        WARN("needs root, setpriv and /usr/bin/python3 to connect as another user; not checked here");
        return;
    }
    // Any group the machine has will do: Debian's nogroup, else the first one the database lists.
    ::setgrent();
    std::string name;
    gid_t gid = 0;
    while (const group* g = ::getgrent()) {
        if (g->gr_gid != 0 && (name.empty() || std::string(g->gr_name) == "nogroup")) {
            name = g->gr_name;
            gid = g->gr_gid;
        }
    }
    ::endgrent();
    REQUIRE_FALSE(name.empty());
    // A gid that is surely not the group's, for the other user's primary group.
    const std::string other_gid = gid == 54321 ? "54322" : "54321";
    DaemonOptions options;
    options.extra_args = {"--group", name};
    DaemonFixture d(options);
    open_socket_to_everyone(d);
    INFO("group " << name << " (gid " << gid << ")");

    json primary = status_as(d, {"--reuid=65534", "--regid=" + std::to_string(gid), "--clear-groups"});
    INFO(primary.dump());
    CHECK(primary.contains("result"));

    json supplementary =
        status_as(d, {"--reuid=65534", "--regid=" + other_gid, "--groups=" + std::to_string(gid)});
    INFO(supplementary.dump());
    CHECK(supplementary.contains("result"));

    check_refused(status_as(d, {"--reuid=65534", "--regid=" + other_gid, "--clear-groups"}),
                  "only root and the " + name + " group");
    CHECK_THAT(d.log(), Contains("serving members of group " + name));
}
