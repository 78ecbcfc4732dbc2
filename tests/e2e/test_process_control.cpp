// Process control from the shell: a task's stdin from mpctl's own (--stdin -, the descriptor itself is
// passed), byte-exact streams through `mpctl run`, Ctrl-C on a foreground run, whole-tree kills, per-task
// limits (--nice, --rlimit, --umask, --env-file) and output retention (--max-output).

#include <fstream>
#include <random>
#include <signal.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;

namespace {

// mpctl ARGS run by a shell with stdin from IN and stdout to OUT (the test harness would otherwise hold
// 30 MB in memory twice).
ProcessResult mpctl_redirected(const DaemonFixture& d, const std::vector<std::string>& args,
                               const std::string& in, const std::string& out) {
    std::string cmd = "\"$0\"";
    for (size_t i = 0; i < args.size(); ++i) {
        cmd += " \"${" + std::to_string(i + 1) + "}\"";
    }
    cmd += " <'" + in + "' >'" + out + "'";
    std::vector<std::string> argv{"/bin/sh", "-c", cmd, mpctl_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, d.client_options());
}

void write_random_file(const std::string& path, size_t bytes) {
    std::mt19937_64 rng(20261125);
    std::string data(bytes, '\0');
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        uint64_t v = rng();
        std::memcpy(&data[i], &v, 8);
    }
    std::ofstream(path, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
}

}  // namespace

TEST_CASE("run --stdin - hands mpctl's stdin to the task", "[e2e][process_control]") {
    DaemonFixture d;
    ProcessOptions in;
    in.stdin_data = "hello\nworld\n";
    auto r = d.mpctl({"run", "--stdin", "-", "--", "tr", "a-z", "A-Z"}, in);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "HELLO\nWORLD\n");

    // Into a pipeline's first stage too.
    auto p = d.mpctl({"run", "--stdin", "-", "--pipe", "--", "sort", "|", "head", "-n", "1"}, in);
    CHECK(p.out == "hello\n");
}

TEST_CASE("submit --stdin - keeps the stdin for when the task runs, even after mpctl exited",
          "[e2e][process_control]") {
    DaemonFixture d;
    TempDir t;
    int64_t blocker = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO")});
    (void)blocker;
    int64_t second = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO")});
    (void)second;
    // Both workers are busy: this one waits in the queue while its submitter is long gone.
    ProcessOptions in;
    in.stdin_data = std::string("binary\0data\xff\n", 13);
    int64_t id = d.submit({"--stdin", "-", "--", "cat"}, in);
    CHECK(d.status(id)["state"] == "pending");
    touch(t / "GO");
    json s = d.wait_for_state(id, "succeeded");
    CHECK(slurp(s["stdout_path"].get<std::string>()) == std::string("binary\0data\xff\n", 13));
}

TEST_CASE("30 MB of random bytes go through --stdin - and run's stdout unchanged", "[e2e][process_control]") {
    DaemonFixture d;
    TempDir t;
    write_random_file(t / "in", 30u << 20);
    auto r = mpctl_redirected(d, {"run", "--stdin", "-", "--", "cat"}, t / "in", t / "out");
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(run_process({"cmp", t / "in", t / "out"}).exit_code == 0);

    // And through a pipeline of three stages.
    auto p = mpctl_redirected(d, {"run", "--stdin", "-", "--pipe", "--", "cat", "|", "cat", "|", "cat"},
                              t / "in", t / "out2");
    CHECK(p.exit_code == 0);
    CHECK(run_process({"cmp", t / "in", t / "out2"}).exit_code == 0);
}

TEST_CASE("a request for a passed stdin without a descriptor is refused", "[e2e][process_control]") {
    DaemonFixture d;
    auto conn = d.connect();
    json r = conn->call("task.submit", {{"argv", {"cat"}}, {"stdin_fd", true}});
    REQUIRE(r.contains("error"));
    CHECK(r["error"]["code"] == -32602);
    CHECK(r["error"]["message"].get<std::string>().find("SCM_RIGHTS") != std::string::npos);
    CHECK(d.mpctl_ndjson({"list", "--json"}).empty());
}

TEST_CASE("Ctrl-C on a foreground run interrupts the task's process group", "[e2e][process_control]") {
    DaemonFixture d;
    TempDir t;
    auto run =
        mpctl_in_background(d,
                            {"run", "--", "sh", "-c",
                             "trap 'echo interrupted; exit 7' INT; echo ready; while :; do sleep 0.05; done"},
                            t / "out", t / "err");
    REQUIRE(eventually([&] { return slurp(t / "out") == "ready\n"; }));
    run->signal(SIGINT);
    auto r = run->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 7);
    CHECK(slurp(t / "out") == "ready\ninterrupted\n");
}

TEST_CASE("a task that ignores Ctrl-C is killed after the grace, or at the second Ctrl-C",
          "[e2e][process_control]") {
    DaemonFixture d;
    TempDir t;
    const std::string ignore = "trap '' INT; echo ready; while :; do sleep 0.05; done";
    SECTION("after the grace") {
        auto run = mpctl_in_background(d, {"run", "--kill-after", "1", "--", "sh", "-c", ignore}, t / "out",
                                       t / "err");
        REQUIRE(eventually([&] { return slurp(t / "out") == "ready\n"; }));
        run->signal(SIGINT);
        auto r = run->wait(60s);
        REQUIRE(r);
        CHECK(r->exit_code == 128 + SIGKILL);
    }
    SECTION("at the second Ctrl-C") {
        auto run = mpctl_in_background(d, {"run", "--kill-after", "600", "--", "sh", "-c", ignore}, t / "out",
                                       t / "err");
        REQUIRE(eventually([&] { return slurp(t / "out") == "ready\n"; }));
        run->signal(SIGINT);
        // The first one reached the task (which ignores it): the task is still running.
        REQUIRE(eventually([&] {
            auto list = d.mpctl_ndjson({"list", "--json"});
            return list.size() == 1 && list[0]["state"] == "running";
        }));
        run->signal(SIGINT);
        auto r = run->wait(60s);
        REQUIRE(r);
        CHECK(r->exit_code == 128 + SIGKILL);
    }
}

TEST_CASE("cancel --force kills the whole tree, background jobs included", "[e2e][process_control]") {
    DaemonFixture d;
    TempDir t;
    const std::string marker = "1002.125";
    int64_t id =
        d.submit({"--", "sh", "-c",
                  "sleep " + marker + " & (sleep " + marker + " &) ; touch '" + (t / "up") + "'; wait"});
    REQUIRE(wait_for_file(t / "up"));
    auto count = [&] {
        auto r = run_process({"pgrep", "-f", "--", "sleep " + marker});
        return lines_of(r.out).size();
    };
    REQUIRE(eventually([&] { return count() >= 2; }));
    CHECK(d.mpctl({"cancel", "--force", str(id)}).exit_code == 0);
    d.wait_for_state(id, "cancelled");
    CHECK(eventually([&] { return count() == 0; }));
}

TEST_CASE("limits from --nice, --rlimit and --umask apply to the task's processes",
          "[e2e][process_control]") {
    DaemonFixture d;
    auto nice = d.mpctl({"run", "--nice", "7", "--", "nice"});
    CHECK(nice.exit_code == 0);
    CHECK(nice.out == "7\n");

    auto limits = d.mpctl({"run", "--rlimit", "nofile=64,core=0", "--rlimit", "cpu=100", "--rlimit", "as=1G",
                           "--", "sh", "-c", "ulimit -n; ulimit -c; ulimit -t; ulimit -v"});
    INFO(limits.err);
    CHECK(limits.exit_code == 0);
    CHECK(limits.out == "64\n0\n100\n1048576\n");

    // Every stage of a pipeline gets them.
    auto piped = d.mpctl({"run", "--rlimit", "nofile=32", "--pipe", "--", "sh", "-c", "ulimit -n", "|", "sh",
                          "-c", "cat; ulimit -n"});
    CHECK(piped.out == "32\n32\n");

    auto mask = d.mpctl({"run", "--umask", "027", "--", "sh", "-c", "umask"});
    CHECK(mask.out == "0027\n");
}

TEST_CASE("env files set variables (--env-file) from a file, --env wins over it", "[e2e][process_control]") {
    DaemonFixture d;
    TempDir t;
    {
        std::ofstream f(t / "vars.env");
        f << "# settings\nA=1\nexport B=\"two words\"\nC='$HOME stays'\nD=from-file\n";
    }
    auto r = d.mpctl({"run", "--env-file", t / "vars.env", "--env", "D=from-flag", "--", "sh", "-c",
                      "echo \"$A|$B|$C|$D\""});
    INFO(r.err);
    CHECK(r.out == "1|two words|$HOME stays|from-flag\n");

    {
        std::ofstream f(t / "bad.env");
        f << "A=1\nthis is not an assignment\n";
    }
    auto bad = d.mpctl({"run", "--env-file", t / "bad.env", "--", "true"});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("line 2") != std::string::npos);
    CHECK(d.mpctl({"run", "--env-file", t / "missing.env", "--", "true"}).exit_code == 2);
}

TEST_CASE(
    "output retention: --max-output keeps the first BYTES of each stream, the task runs on, the status says "
    "truncated",
    "[e2e][process_control]") {
    DaemonFixture d;
    TempDir t;
    // Writes 5000 bytes to each stream, then (after the daemon had time to notice) more, then says done.
    auto r =
        d.mpctl({"run", "--max-output", "1000", "--", "sh", "-c",
                 "head -c 5000 /dev/zero; head -c 5000 /dev/zero >&2; sleep 0.6; echo more; echo more >&2; "
                 "touch '" +
                     (t / "finished") + "'"});
    CHECK(r.exit_code == 0);
    CHECK(exists(t / "finished"));  // it ran to its end
    CHECK(r.out.size() == 1000);
    json s = d.mpctl_json({"status", "--json", "1"});
    CHECK(s["truncated"] == true);
    CHECK(slurp(s["stdout_path"].get<std::string>()) == std::string(1000, '\0'));
    CHECK(slurp(s["stderr_path"].get<std::string>()) == std::string(1000, '\0'));

    auto small = d.mpctl({"run", "--max-output", "1K", "--", "echo", "fits"});
    CHECK(small.out == "fits\n");
    CHECK(d.mpctl_json({"status", "--json", "2"})["truncated"] == false);

    // truncated survives a restart of the daemon.
    d.stop();
    d.start();
    CHECK(d.mpctl_json({"status", "--json", "1"})["truncated"] == true);
}

TEST_CASE("bad process-control options are usage errors and submit nothing", "[e2e][process_control]") {
    DaemonFixture d;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"run", "--rlimit", "bogus=1", "--", "true"},
             {"run", "--rlimit", "nofile", "--", "true"},
             {"run", "--rlimit", "nofile=many", "--", "true"},
             {"run", "--umask", "9", "--", "true"},
             {"run", "--umask", "01777", "--", "true"},
             {"run", "--nice", "20", "--", "true"},
             {"run", "--max-output", "lots", "--", "true"},
         }) {
        auto r = d.mpctl(args);
        INFO(args[1] + " " + args[2]);
        CHECK(r.exit_code == 2);
        CHECK(r.err.starts_with("mpctl: "));
    }
    CHECK(d.mpctl_ndjson({"list", "--json"}).empty());
}

TEST_CASE("logs --tail N starts with the last N lines", "[e2e][process_control]") {
    DaemonFixture d;
    CHECK(d.mpctl({"run", "--", "seq", "1", "100"}).exit_code == 0);
    CHECK(d.mpctl({"logs", "1", "--tail", "3"}).out == "98\n99\n100\n");
    CHECK(d.mpctl({"logs", "1", "-n", "0"}).out.empty());
    CHECK(d.mpctl({"logs", "1", "--tail", "1000"}).out.size() == d.mpctl({"logs", "1"}).out.size());
    // A last line without a newline counts as a line.
    CHECK(d.mpctl({"run", "--", "printf", "a\\nb\\nc"}).exit_code == 0);
    CHECK(d.mpctl({"logs", "2", "--tail", "2"}).out == "b\nc");
    // The daemon looks for line starts no further back than 16 MiB: a 20 MB line is cut there.
    CHECK(d.mpctl({"run", "--", "sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' a; echo; echo last"})
              .exit_code == 0);
    auto cut = d.mpctl({"logs", "3", "--tail", "2"});
    CHECK(cut.out.size() == (16u << 20));
    CHECK(cut.out.ends_with("aaa\nlast\n"));
}

TEST_CASE("cgroup containment (--cgroup) holds what leaves the process group, where cgroup v2 is writable",
          "[e2e][process_control][cgroup]") {
    DaemonFixture d;
    TempDir t;
    auto sleeping = [](const std::string& marker) {
        return lines_of(run_process({"pgrep", "-f", "--", "sleep " + marker}).out).size();
    };
    json info = d.mpctl_json({"daemon", "status", "--json"});
    REQUIRE(info.contains("cgroups"));
    if (!info["cgroups"]["available"].get<bool>()) {
        // Refused at submit, with the reason, rather than run without the containment it asked for.
        auto r = d.mpctl({"run", "--cgroup", "--", "true"});
        CHECK(r.exit_code == 6);
        CHECK(r.err.find("containment is not available here") != std::string::npos);
        CHECK(r.err.find(info["cgroups"]["reason"].get<std::string>()) != std::string::npos);
        return;
    }
    // A process group cannot hold a child that calls setsid(): without --cgroup it outlives its task.
    const std::string escapee = "1004.125";
    CHECK(d.mpctl({"run", "--", "sh", "-c", "setsid sleep " + escapee + " & echo started"}).exit_code == 0);
    CHECK(eventually([&] { return sleeping(escapee) == 1; }));
    run_process({"pkill", "-f", "--", "sleep " + escapee});

    // With --cgroup, it ends with its task...
    const std::string contained = "1004.25";
    auto r = d.mpctl(
        {"run", "--cgroup", "--", "sh", "-c", "setsid sleep " + contained + " & cat /proc/self/cgroup"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("0::/") != std::string::npos);
    CHECK(r.out.find("/task-2\n") != std::string::npos);  // its own cgroup, named by its id
    CHECK(eventually([&] { return sleeping(contained) == 0; }));

    // ...and with a forced cancel.
    const std::string cancelled = "1004.375";
    int64_t id =
        d.submit({"--cgroup", "--", "sh", "-c",
                  "setsid sleep " + cancelled + " & touch '" + (t / "up") + "'; sleep " + cancelled});
    REQUIRE(wait_for_file(t / "up"));
    REQUIRE(eventually([&] { return sleeping(cancelled) >= 2; }));
    CHECK(d.mpctl({"cancel", "--force", str(id)}).exit_code == 0);
    d.wait_for_state(id, "cancelled");
    CHECK(eventually([&] { return sleeping(cancelled) == 0; }));
}
