// Nothing leaks into a task: it sees exactly fds 0, 1 and 2, even while clients are connected and even
// when mpctld itself inherited extra descriptors without close-on-exec from whoever started it.

#include <algorithm>
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;

namespace {

// Lists the task shell's own fds (ls runs as its child, so its directory fd is not in the list).
const char* const k_list_fds = "ls /proc/$$/fd";

// What the daemon started with: pid and the fds it holds.
std::vector<std::string> fds_of(pid_t pid) {
    auto r = run_process({"ls", "/proc/" + std::to_string(pid) + "/fd"});
    return lines_of(r.out);
}

}  // namespace

TEST_CASE("a task sees only fds 0, 1 and 2", "[e2e][fd_hygiene]") {
    DaemonFixture d;
    auto r = d.mpctl({"run", "--", "sh", "-c", k_list_fds});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "0\n1\n2\n");

    // Also for a task started while other clients hold connections (a follower, a waiter).
    TempDir t;
    int64_t holder = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO")});
    auto follower = mpctl_in_background(d, {"logs", "--follow", str(holder)}, t / "f.out", t / "f.err");
    auto waiter = mpctl_in_background(d, {"wait", str(holder)}, t / "w.out", t / "w.err");
    auto conn = d.connect();
    REQUIRE(conn->call("daemon.status", json::object()).contains("result"));
    int64_t id = d.submit({"--", "sh", "-c", k_list_fds});
    json s = d.wait_for_state(id, "succeeded");
    CHECK(slurp(s["stdout_path"].get<std::string>()) == "0\n1\n2\n");
    touch(t / "GO");
    REQUIRE(follower->wait(60s));
    REQUIRE(waiter->wait(60s));
}

TEST_CASE("a task's stdin is /dev/null and its stdout and stderr are its capture files",
          "[e2e][fd_hygiene]") {
    DaemonFixture d;
    // Files are compared by inode: the daemon may name a file only after opening it.
    int64_t id =
        d.submit({"--", "sh", "-c",
                  "readlink /proc/$$/fd/0; stat -L -c %i /proc/$$/fd/1; stat -L -c %i /proc/$$/fd/2"});
    json s = d.wait_for_state(id, "succeeded");
    auto lines = lines_of(slurp(s["stdout_path"].get<std::string>()));
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == "/dev/null");
    struct stat out_st {};
    struct stat err_st {};
    REQUIRE(::stat(s["stdout_path"].get<std::string>().c_str(), &out_st) == 0);
    REQUIRE(::stat(s["stderr_path"].get<std::string>().c_str(), &err_st) == 0);
    CHECK(lines[1] == std::to_string(out_st.st_ino));
    CHECK(lines[2] == std::to_string(err_st.st_ino));
}

TEST_CASE("a task sees only fds 0, 1 and 2 even when mpctld inherited extra fds", "[e2e][fd_hygiene]") {
    TempDir t;
    std::string socket = t / "d.sock";
    std::string state = t / "state";
    // fds 7 and 8 are opened by the shell without close-on-exec, so mpctld inherits them.
    std::string script = "exec 7</dev/null 8>" + (t / "fd8") +
                         "; exec \"$0\" --foreground --exit-with-parent "
                         "--socket \"$1\" --state-dir \"$2\" --workers 2";
    BackgroundProcess daemon({"/bin/sh", "-c", script, mpctld_bin(), socket, state}, {}, false);
    REQUIRE(eventually([&] { return socket_answers(socket) || !daemon.running(); }));
    REQUIRE(daemon.running());

    // The setup worked: the daemon really holds 7 and 8.
    auto daemon_fds = fds_of(daemon.pid());
    CHECK(std::find(daemon_fds.begin(), daemon_fds.end(), "7") != daemon_fds.end());
    CHECK(std::find(daemon_fds.begin(), daemon_fds.end(), "8") != daemon_fds.end());

    ProcessOptions client;
    client.env_set["MPCTL_SOCKET"] = socket;
    client.env_set["MPCTL_STATE_DIR"] = state;
    client.env_set["MPCTL_NO_AUTOSTART"] = "1";
    auto r = run_process({mpctl_bin(), "run", "--", "sh", "-c", k_list_fds}, client);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "0\n1\n2\n");

    // The same for a --shell task and for a submitted one.
    auto shell = run_process({mpctl_bin(), "run", "--shell", "--", "ls /proc/$$/fd"}, client);
    CHECK(shell.exit_code == 0);
    CHECK(shell.out == "0\n1\n2\n");
    auto submitted = run_process({mpctl_bin(), "submit", "--", "sh", "-c", k_list_fds}, client);
    REQUIRE(submitted.exit_code == 0);
    auto result = run_process({mpctl_bin(), "result", lines_of(submitted.out).at(0)}, client);
    CHECK(result.exit_code == 0);
    CHECK(result.out == "0\n1\n2\n");

    daemon.signal(SIGTERM);
    auto stopped = daemon.wait(60s);
    REQUIRE(stopped);
    CHECK(stopped->exit_code == 0);
}
