// submit and run with every task option: where a task runs, with which environment and input, how it is
// stopped and retried, what submit --json shows, and how run streams and exits.

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

TEST_CASE("submit --json prints the status object with every field SPEC lists", "[e2e][submit]") {
    DaemonFixture d;
    json s = d.mpctl_json({"submit", "--name", "greeting", "--label", "team=core", "--", "echo", "hi"});
    INFO(s.dump());
    for (const char* field : {"id", "name", "state", "reason", "exit_code", "signal", "argv", "shell", "cwd",
                              "pool", "labels", "submitted_at", "started_at", "finished_at", "duration_ms",
                              "attempts", "pid", "stdout_path", "stderr_path"}) {
        INFO("field " << field);
        CHECK(s.contains(field));
    }
    REQUIRE(s["id"].is_number_integer());
    CHECK(s["id"].get<int64_t>() > 0);
    CHECK(s["name"] == "greeting");
    CHECK(s["argv"] == json::array({"echo", "hi"}));
    CHECK(s["shell"].is_null());
    CHECK(s["pool"] == "default");
    CHECK(s["labels"] == json{{"team", "core"}});
    CHECK(is_rfc3339_utc(s["submitted_at"]));
    CHECK(s["stdout_path"].is_string());
    CHECK(s["stderr_path"].is_string());
    CHECK(s["attempts"].is_number_integer());
    // At submit time it has not finished: no outcome yet.
    CHECK(s["reason"].is_null());
    CHECK(s["exit_code"].is_null());
    CHECK(s["signal"].is_null());
    CHECK(s["finished_at"].is_null());

    json done = d.wait_for_state(s["id"].get<int64_t>(), "succeeded");
    INFO(done.dump());
    CHECK(done["state"] == "succeeded");
    CHECK(done["reason"].is_null());
    CHECK(done["exit_code"] == 0);
    CHECK(done["signal"].is_null());
    CHECK(done["pid"].is_null());
    CHECK(done["attempts"] == 1);
    CHECK(is_rfc3339_utc(done["submitted_at"]));
    CHECK(is_rfc3339_utc(done["started_at"]));
    CHECK(is_rfc3339_utc(done["finished_at"]));
    CHECK(done["duration_ms"].is_number_integer());
    CHECK(done["duration_ms"].get<int64_t>() >= 0);
    CHECK(slurp(done["stdout_path"].get<std::string>()) == "hi\n");
    CHECK(slurp(done["stderr_path"].get<std::string>()).empty());
}

TEST_CASE("a running task's status shows its pid and start time but no finish", "[e2e][submit]") {
    DaemonFixture d;
    TempDir t;
    int64_t id = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO")});
    json s = d.wait_for_state(id, "running");
    INFO(s.dump());
    REQUIRE(s["state"] == "running");
    CHECK(s["pid"].is_number_integer());
    CHECK(is_rfc3339_utc(s["started_at"]));
    CHECK(s["finished_at"].is_null());
    CHECK(s["attempts"] == 1);
    touch(t / "GO");
    CHECK(d.wait_for_state(id, "succeeded")["state"] == "succeeded");
}

TEST_CASE("a task runs by default in the client's directory with the client's environment", "[e2e][submit]") {
    DaemonOptions options;
    options.process.env_set["MPCTL_E2E_DAEMON_ONLY"] = "daemon";
    DaemonFixture d(options);
    TempDir here;
    ProcessOptions client;
    client.cwd = here.path();
    client.env_set["MPCTL_E2E_CLIENT_ONLY"] = "from-the-client";
    auto r =
        d.mpctl({"run", "--", "sh", "-c",
                 "pwd -P; echo \"${MPCTL_E2E_CLIENT_ONLY-unset}\"; echo \"${MPCTL_E2E_DAEMON_ONLY-unset}\""},
                client);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == here.path() + "\nfrom-the-client\nunset\n");

    // submit captures the same things, and status shows the directory.
    int64_t id = d.submit({"--", "sh", "-c", "echo \"$MPCTL_E2E_CLIENT_ONLY\""}, client);
    json s = d.wait_for_state(id, "succeeded");
    CHECK(s["cwd"] == here.path());
    CHECK(slurp(s["stdout_path"].get<std::string>()) == "from-the-client\n");
}

TEST_CASE("submit --cwd runs the task there, a relative one resolved against the client's directory",
          "[e2e][submit]") {
    DaemonFixture d;
    TempDir here;
    REQUIRE(::mkdir((here / "sub").c_str(), 0755) == 0);
    TempDir elsewhere;
    ProcessOptions client;
    client.cwd = here.path();

    auto rel = d.mpctl({"run", "--cwd", "sub", "--", "pwd", "-P"}, client);
    INFO(rel.err);
    CHECK(rel.exit_code == 0);
    CHECK(rel.out == here / "sub" + "\n");

    auto abs = d.mpctl({"run", "--cwd", elsewhere.path(), "--", "pwd", "-P"}, client);
    CHECK(abs.exit_code == 0);
    CHECK(abs.out == elsewhere.path() + "\n");

    int64_t id = d.submit({"--cwd", "sub", "--", "true"}, client);
    CHECK(d.wait_for_state(id, "succeeded")["cwd"] == here / "sub");
}

TEST_CASE("submit --env K=V sets a variable and overrides the client's value", "[e2e][submit]") {
    DaemonFixture d;
    ProcessOptions client;
    client.env_set["MPCTL_E2E_VAR"] = "client";
    auto r = d.mpctl({"run", "--env", "MPCTL_E2E_VAR=option", "--env", "MPCTL_E2E_NEW=x=y", "--", "sh", "-c",
                      "echo \"$MPCTL_E2E_VAR $MPCTL_E2E_NEW\""},
                     client);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "option x=y\n");
}

TEST_CASE("submit --env-clear starts from an empty environment, --env K passes one variable through",
          "[e2e][submit]") {
    DaemonFixture d;
    ProcessOptions client;
    client.env_set["MPCTL_E2E_PASS"] = "passed";
    client.env_set["MPCTL_E2E_OTHER"] = "not passed";

    auto empty = d.mpctl({"run", "--env-clear", "--", "/usr/bin/env"}, client);
    INFO(empty.err);
    CHECK(empty.exit_code == 0);
    CHECK(empty.out.empty());

    auto set = d.mpctl({"run", "--env-clear", "--env", "A=1", "--", "/usr/bin/env"}, client);
    CHECK(set.exit_code == 0);
    CHECK(set.out == "A=1\n");

    auto pass = d.mpctl({"run", "--env-clear", "--env", "MPCTL_E2E_PASS", "--", "/usr/bin/env"}, client);
    CHECK(pass.exit_code == 0);
    CHECK(pass.out == "MPCTL_E2E_PASS=passed\n");

    // Without --env-clear, --env K keeps the client's value (it is already there).
    auto keep =
        d.mpctl({"run", "--env", "MPCTL_E2E_PASS", "--", "sh", "-c", "echo \"$MPCTL_E2E_PASS\""}, client);
    CHECK(keep.exit_code == 0);
    CHECK(keep.out == "passed\n");
}

TEST_CASE("run --stdin feeds a file, a relative path resolved against the client's directory",
          "[e2e][submit]") {
    DaemonFixture d;
    TempDir here;
    here.write("input.txt", "line one\nline two\n");
    TempDir elsewhere;
    ProcessOptions client;
    client.cwd = here.path();

    // Relative to the client's directory, not to --cwd.
    auto rel = d.mpctl({"run", "--stdin", "input.txt", "--cwd", elsewhere.path(), "--", "cat"}, client);
    INFO(rel.err);
    CHECK(rel.exit_code == 0);
    CHECK(rel.out == "line one\nline two\n");

    auto abs = d.mpctl({"run", "--stdin", here / "input.txt", "--", "wc", "-l"}, client);
    CHECK(abs.exit_code == 0);
    CHECK(abs.out.find('2') != std::string::npos);

    // Without --stdin the task reads /dev/null: cat ends at once.
    auto none = d.mpctl({"run", "--", "cat"}, client);
    CHECK(none.exit_code == 0);
    CHECK(none.out.empty());
}

TEST_CASE("run --shell runs the command words as one sh -c string", "[e2e][submit]") {
    DaemonFixture d;
    auto r = d.mpctl({"run", "--shell", "--", "echo a && echo b | tr b c; exit 5"});
    INFO(r.err);
    CHECK(r.out == "a\nc\n");
    CHECK(r.exit_code == 5);

    auto words = d.mpctl({"run", "--shell", "--", "echo", "$((1+2))"});
    CHECK(words.exit_code == 0);
    CHECK(words.out == "3\n");

    json s = d.mpctl_json({"submit", "--shell", "--", "echo shell"});
    CHECK(s["shell"] == "echo shell");
    CHECK(s["argv"].is_null());

    // Without --shell no shell is involved: metacharacters are plain arguments.
    auto plain = d.mpctl({"run", "--", "echo", "a && b", "$HOME"});
    CHECK(plain.out == "a && b $HOME\n");
}

TEST_CASE("run --timeout stops the task with SIGTERM and the outcome is a timeout", "[e2e][submit]") {
    DaemonFixture d;
    TempDir t;
    // The trap shows that SIGTERM came first; with a long --kill-after, no SIGKILL follows.
    std::string script = "trap 'touch " + (t / "TERM") + "; exit 0' TERM; while :; do sleep 0.05; done";
    auto r = d.mpctl({"run", "--timeout", "2", "--kill-after", "60", "--", "sh", "-c", script});
    INFO(r.err);
    CHECK(r.exit_code == 124);
    CHECK(exists(t / "TERM"));

    json s = d.mpctl_json({"submit", "--timeout", "250ms", "--", "sleep", "60"});
    CHECK(s["timeout"] == 0.25);
    json done = d.wait_for_state(s["id"].get<int64_t>(), "failed");
    CHECK(done["reason"] == "timeout");
}

TEST_CASE("submit --kill-after 0 kills a timed-out task with SIGKILL at once", "[e2e][submit]") {
    DaemonFixture d;
    TempDir t;
    std::string script = "trap 'touch " + (t / "TERM") + "; exit 0' TERM; while :; do sleep 0.05; done";
    int64_t id = d.submit({"--timeout", "0.3", "--kill-after", "0", "--", "sh", "-c", script});
    json s = d.wait_for_state(id, "failed");
    INFO(s.dump());
    CHECK(s["reason"] == "timeout");
    CHECK(s["signal"] == 9);
    CHECK_FALSE(exists(t / "TERM"));
    CHECK(d.mpctl({"wait", str(id)}).exit_code == 124);
}

TEST_CASE("submit --kill-after escalates to SIGKILL when the task ignores SIGTERM", "[e2e][submit]") {
    DaemonFixture d;
    int64_t id = d.submit({"--timeout", "0.3", "--kill-after", "0.3", "--", "sh", "-c",
                           "trap '' TERM; while :; do sleep 0.05; done"});
    json s = d.wait_for_state(id, "failed");
    INFO(s.dump());
    CHECK(s["reason"] == "timeout");
    CHECK(s["signal"] == 9);
}

TEST_CASE("submit --retries runs a failing task again and counts its attempts", "[e2e][submit]") {
    DaemonFixture d;
    TempDir t;
    // Fails on attempts 1 and 2, succeeds on 3.
    std::string script = "n=$(cat " + (t / "count") + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " +
                         (t / "count") + "; [ $n -ge 3 ]";
    int64_t id = d.submit({"--retries", "2", "--", "sh", "-c", script});
    json s = d.wait_for_state(id, "succeeded");
    INFO(s.dump());
    CHECK(s["state"] == "succeeded");
    CHECK(s["attempts"] == 3);
    CHECK(s["retries"] == 2);
    CHECK(slurp(t / "count") == "3\n");
}

TEST_CASE("submit --retry-delay keeps a failed attempt pending until the delay has passed", "[e2e][submit]") {
    DaemonFixture d;
    int64_t id = d.submit({"--retries", "1", "--retry-delay", "1h", "--", "false"});
    // After the first failure it waits (an hour) for its retry: pending, one attempt made.
    json s;
    bool waiting = eventually([&] {
        s = d.status(id);
        return s["attempts"] == 1 && s["state"] == "pending";
    });
    INFO(s.dump());
    CHECK(waiting);
    CHECK(d.mpctl({"cancel", str(id)}).exit_code == 0);
    CHECK(d.wait_for_state(id, "cancelled")["attempts"] == 1);
}

TEST_CASE("submit --after runs a task only once its dependency succeeded", "[e2e][submit]") {
    DaemonFixture d;
    TempDir t;
    std::string order = t / "order";
    int64_t a = d.submit({"--", "sh", "-c", sh_wait_for(t / "GO") + "; echo A >> " + order});
    int64_t b = d.submit({"--after", str(a), "--", "sh", "-c", "echo B >> " + order});
    d.wait_for_state(a, "running");
    json pending = d.status(b);
    CHECK(pending["state"] == "pending");
    CHECK(pending["started_at"].is_null());
    CHECK(pending["after"] == json::array({a}));
    touch(t / "GO");
    CHECK(d.mpctl({"wait", str(b)}).exit_code == 0);
    CHECK(slurp(order) == "A\nB\n");
}

TEST_CASE("submit --pool, --priority, --name and repeated --label show in the status object",
          "[e2e][submit]") {
    DaemonFixture d;
    json s = d.mpctl_json({"submit", "--pool", "builds", "--priority", "7", "--name", "compile", "--label",
                           "a=1", "--label", "b=two", "--", "true"});
    INFO(s.dump());
    CHECK(s["pool"] == "builds");
    CHECK(s["priority"] == 7);
    CHECK(s["name"] == "compile");
    CHECK(s["labels"] == json{{"a", "1"}, {"b", "two"}});
    CHECK(d.wait_for_state(s["id"].get<int64_t>(), "succeeded")["pool"] == "builds");
}

TEST_CASE("run streams stdout and stderr separately while the task runs and exits with its code",
          "[e2e][run]") {
    DaemonFixture d;
    TempDir t;
    std::string script =
        "echo first; echo err-first >&2; " + sh_wait_for(t / "GO") + "; echo second; exit 42";
    auto bg = mpctl_in_background(d, {"run", "--", "sh", "-c", script}, t / "out", t / "err");
    // Output arrives while the task still waits: streamed, not printed at the end.
    CHECK(eventually([&] { return slurp(t / "out") == "first\n" && slurp(t / "err") == "err-first\n"; }));
    CHECK(bg->running());
    touch(t / "GO");
    auto r = bg->wait(60s);
    REQUIRE(r);
    CHECK(r->exit_code == 42);
    CHECK(slurp(t / "out") == "first\nsecond\n");
    CHECK(slurp(t / "err") == "err-first\n");
}

TEST_CASE("run passes large output through intact", "[e2e][run]") {
    DaemonFixture d;
    // 200,000 lines (about 1.3 MB) on stdout, a little on stderr.
    auto r = d.mpctl({"run", "--", "sh", "-c", "seq 1 200000; echo done >&2"});
    CHECK(r.exit_code == 0);
    CHECK(r.err == "done\n");
    auto out = lines_of(r.out);
    REQUIRE(out.size() == 200000);
    CHECK(out.front() == "1");
    CHECK(out.back() == "200000");
}

TEST_CASE("run and submit take the command without --: their options first, then the command's words",
          "[e2e][submit]") {
    DaemonFixture d;
    auto r = d.mpctl({"run", "--name", "plain", "echo", "hi", "--name", "-x"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "hi --name -x\n");  // after the command, words are the command's
    json s = d.mpctl_json({"run", "--json", "sh", "-c", "echo $0", "zero"});
    CHECK(s["stdout"] == "zero\n");
    CHECK(d.mpctl({"submit", "true"}).out == "3\n");
}
