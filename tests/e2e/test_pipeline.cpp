// Pipelines wired by the daemon (`--pipe -- A '|' B '|' C`): data flows stage to stage through pipes, the
// status shows every stage, the outcome follows pipefail with the SIGPIPE rule, each stage's stderr is
// kept apart, and stopping a pipeline leaves no process behind.

#include <signal.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;

namespace {

// Processes whose command line contains MARKER (a unique argument such as "sleep 1001.25").
std::vector<pid_t> processes_with(const std::string& marker) {
    std::vector<pid_t> found;
    auto r = run_process({"pgrep", "-f", "--", marker});
    for (const auto& line : lines_of(r.out)) {
        pid_t pid = static_cast<pid_t>(std::atol(line.c_str()));
        if (pid > 0 && process_alive(pid)) {
            found.push_back(pid);
        }
    }
    return found;
}

}  // namespace

TEST_CASE("a three-stage pipeline passes data stage to stage and reports every stage", "[e2e][pipeline]") {
    DaemonFixture d;
    auto r = d.mpctl({"run", "--pipe", "--", "printf", "b\\na\\nc\\n", "|", "sort", "|", "tr", "a-z", "A-Z"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "A\nB\nC\n");

    json s = d.mpctl_json({"status", "--json", "1"});
    CHECK(s["state"] == "succeeded");
    CHECK(s["argv"].is_null());
    REQUIRE(s["stages"].is_array());
    REQUIRE(s["stages"].size() == 3);
    CHECK(s["stages"][0]["argv"] == json({"printf", "b\\na\\nc\\n"}));
    CHECK(s["stages"][1]["argv"] == json({"sort"}));
    CHECK(s["stages"][2]["argv"] == json({"tr", "a-z", "A-Z"}));
    for (const auto& st : s["stages"]) {
        CHECK(st["state"] == "succeeded");
        CHECK(st["exit_code"] == 0);
        CHECK(st["signal"].is_null());
        CHECK(st["pid"].is_null());  // not running any more
    }
    // The human status names the pipeline as a shell would write it.
    auto human = d.mpctl({"status", "1"});
    CHECK(human.out.find("printf 'b\\na\\nc\\n' | sort | tr a-z A-Z") != std::string::npos);
}

TEST_CASE("a running pipeline shows each stage's pid, all in one process group", "[e2e][pipeline]") {
    DaemonFixture d;
    TempDir t;
    int64_t id = d.submit({"--pipe", "--", "sh", "-c", sh_wait_for(t / "GO"), "|", "cat", "|", "cat"});
    json s;
    REQUIRE(eventually([&] {
        s = d.status(id);
        return s["state"] == "running" && s["stages"][2]["state"] == "running";
    }));
    std::vector<pid_t> pids;
    for (const auto& st : s["stages"]) {
        REQUIRE(st["pid"].is_number_integer());
        pids.push_back(st["pid"].get<pid_t>());
    }
    CHECK(s["pid"] == pids[0]);
    for (pid_t pid : pids) {
        char state = 0;
        pid_t group = 0;
        REQUIRE(proc_state(pid, state, group));
        CHECK(group == pids[0]);
    }
    touch(t / "GO");
    d.wait_for_state(id, "succeeded");
}

TEST_CASE("pipefail: the rightmost failing stage decides the exit code", "[e2e][pipeline]") {
    DaemonFixture d;
    CHECK(d.mpctl({"run", "--pipe", "--", "sh", "-c", "exit 3", "|", "cat"}).exit_code == 3);
    CHECK(d.mpctl({"run", "--pipe", "--", "true", "|", "sh", "-c", "cat; exit 4", "|", "cat"}).exit_code ==
          4);
    CHECK(d.mpctl({"run", "--pipe", "--", "sh", "-c", "exit 3", "|", "sh", "-c", "cat; exit 5", "|", "cat"})
              .exit_code == 5);

    json s = d.mpctl_json({"status", "--json", "3"});
    CHECK(s["state"] == "failed");
    CHECK(s["reason"] == "exit");
    CHECK(s["exit_code"] == 5);
    CHECK(s["stages"][0]["state"] == "failed");
    CHECK(s["stages"][0]["exit_code"] == 3);
    CHECK(s["stages"][1]["exit_code"] == 5);
    CHECK(s["stages"][2]["state"] == "succeeded");
}

TEST_CASE("SIGPIPE of an early stage is success: yes | head -1", "[e2e][pipeline]") {
    DaemonFixture d;
    auto r = d.mpctl({"run", "--pipe", "--", "yes", "|", "head", "-n", "1"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "y\n");
    json s = d.mpctl_json({"status", "--json", "1"});
    CHECK(s["state"] == "succeeded");
    CHECK(s["stages"][0]["signal"] == SIGPIPE);
    CHECK(s["stages"][0]["state"] == "succeeded");

    // The last stage dying of SIGPIPE is a failure like any other signal.
    auto last = d.mpctl({"run", "--pipe", "--", "true", "|", "sh", "-c", "kill -PIPE $$"});
    CHECK(last.exit_code == 128 + SIGPIPE);
}

TEST_CASE("an early stage that exits 141 fails unless it is a shell reporting its child's SIGPIPE",
          "[e2e][pipeline]") {
    DaemonFixture d;
    // Not a shell: 141 is its exit code, as bash's pipefail says.
    auto plain = d.mpctl({"run", "--pipe", "--", "python3", "-c", "import sys; sys.exit(141)", "|", "cat"});
    CHECK(plain.exit_code == 141);
    CHECK(run_process({"bash", "-o", "pipefail", "-c", "python3 -c 'import sys; sys.exit(141)' | cat"})
              .exit_code == 141);
    // A shell whose child died of SIGPIPE exits 141: its reader closed early, on purpose.
    auto shell = d.mpctl({"run", "--pipe", "--", "sh", "-c", "yes; exit $?", "|", "head", "-n", "1"});
    INFO(shell.err);
    CHECK(shell.exit_code == 0);
    CHECK(shell.out == "y\n");
    json s = d.mpctl_json({"status", "--json", "2"});
    CHECK(s["stages"][0]["exit_code"] == 141);
    CHECK(s["stages"][0]["state"] == "succeeded");
}

TEST_CASE("each stage's stderr is kept apart and logs --stage reads one", "[e2e][pipeline]") {
    DaemonFixture d;
    auto r = d.mpctl({"run", "--pipe", "--", "sh", "-c", "echo err-0 >&2; echo data", "|", "sh", "-c",
                      "echo err-1 >&2; cat", "|", "sh", "-c", "cat; echo err-2 >&2"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "data\n");
    // run shows every stage's stderr.
    for (const char* e : {"err-0\n", "err-1\n", "err-2\n"}) {
        CHECK(r.err.find(e) != std::string::npos);
    }
    CHECK(d.mpctl({"logs", "1", "--stderr", "--stage", "0"}).out == "err-0\n");
    CHECK(d.mpctl({"logs", "1", "--stderr", "--stage", "1"}).out == "err-1\n");
    CHECK(d.mpctl({"logs", "1", "--stage", "2"}).out == "err-2\n");
    // All of them, in stage order.
    CHECK(d.mpctl({"logs", "1", "--stderr"}).out == "err-0\nerr-1\nerr-2\n");
    json s = d.mpctl_json({"status", "--json", "1"});
    for (int i = 0; i < 3; ++i) {
        CHECK(slurp(s["stages"][i]["stderr_path"].get<std::string>()) == "err-" + std::to_string(i) + "\n");
    }

    auto bad = d.mpctl({"logs", "1", "--stage", "3"});
    CHECK(bad.exit_code != 0);
    CHECK(bad.err.find("0 to 2") != std::string::npos);
}

TEST_CASE("a stage that cannot be spawned fails the pipeline with reason spawn and tears the others down",
          "[e2e][pipeline]") {
    DaemonFixture d;
    const std::string marker = "1001.375";
    auto r = d.mpctl({"run", "--pipe", "--", "sleep", marker, "|", "/nonexistent/command", "|", "cat"});
    CHECK(r.exit_code == 127);
    CHECK(r.err.find("stage 1") != std::string::npos);
    json s = d.mpctl_json({"status", "--json", "1"});
    CHECK(s["state"] == "failed");
    CHECK(s["reason"] == "spawn");
    CHECK(s["error"].get<std::string>().find("/nonexistent/command") != std::string::npos);
    for (const auto& st : s["stages"]) {
        CHECK(st["pid"].is_null());
    }
    CHECK(eventually([&] { return processes_with("sleep " + marker).empty(); }));
}

TEST_CASE("a pipeline timeout kills every stage, their children and background jobs", "[e2e][pipeline]") {
    DaemonFixture d;
    const std::string marker = "1001.625";
    TempDir t;
    // Each stage leaves a background sleep and waits in a foreground one; the last also says it started.
    int64_t id = d.submit({"--timeout", "1", "--kill-after", "1", "--pipe", "--", "sh", "-c",
                           "sleep " + marker + " & sleep " + marker, "|", "sh", "-c",
                           "sleep " + marker + " & touch '" + (t / "up") + "'; sleep " + marker});
    REQUIRE(wait_for_file(t / "up"));
    // Two sleeps per stage (the shells running them may match too).
    CHECK(eventually([&] { return processes_with("sleep " + marker).size() >= 4; }));
    json s = d.wait_for_state(id, "failed");
    CHECK(s["reason"] == "timeout");
    CHECK(eventually([&] { return processes_with("sleep " + marker).empty(); }));
}

TEST_CASE("every stage of a pipeline sees only fds 0, 1 and 2", "[e2e][pipeline][fd_hygiene]") {
    DaemonFixture d;
    // Each stage lists its own fds on its stderr. (`exec 1>&2` rather than `ls ... >&2`: for a redirected
    // command dash keeps saved copies of the fds at 10 and up while it runs; the trailing `true` keeps dash
    // from exec'ing ls, whose own directory fd would show.)
    const std::string list = "exec 1>&2; ls /proc/$$/fd; true";
    auto r = d.mpctl({"run", "--pipe", "--", "sh", "-c", list, "|", "sh", "-c", list, "|", "sh", "-c", list});
    CHECK(r.exit_code == 0);
    for (const char* stage : {"0", "1", "2"}) {
        CHECK(d.mpctl({"logs", "1", "--stage", stage}).out == "0\n1\n2\n");
    }
}

TEST_CASE("logs --follow streams a running pipeline's output and every stage's stderr", "[e2e][pipeline]") {
    DaemonFixture d;
    TempDir t;
    int64_t id = d.submit({"--pipe", "--", "sh", "-c",
                           "echo first; echo e0 >&2; " + sh_wait_for(t / "GO") + "; echo second", "|", "sh",
                           "-c", "cat; echo e1 >&2"});
    auto follower = mpctl_in_background(d, {"logs", "--follow", "--both", str(id)}, t / "f.out", t / "f.err");
    REQUIRE(eventually([&] { return slurp(t / "f.out") == "first\n" && slurp(t / "f.err") == "e0\n"; }));
    touch(t / "GO");
    auto r = follower->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(slurp(t / "f.out") == "first\nsecond\n");
    CHECK(slurp(t / "f.err") == "e0\ne1\n");
}

TEST_CASE("malformed --pipe pipelines are refused", "[e2e][pipeline]") {
    DaemonFixture d;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"run", "--pipe", "--", "ls"},
             {"run", "--pipe", "--", "ls", "|"},
             {"run", "--pipe", "--", "|", "wc"},
             {"run", "--pipe", "--", "ls", "|", "|", "wc"},
             {"run", "--pipe", "--shell", "--", "ls", "|", "wc"},
         }) {
        auto r = d.mpctl(args);
        INFO(args.back());
        CHECK(r.exit_code == 2);
        CHECK(r.err.starts_with("mpctl: "));
    }
    CHECK(d.mpctl_ndjson({"list", "--json"}).empty());  // nothing was submitted
}
