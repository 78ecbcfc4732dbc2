#include <signal.h>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/task_status.hpp>

using mpctl::proto::FailReason;
using mpctl::proto::mirror_exit_code;
using mpctl::proto::RequestError;
using mpctl::proto::status_from_json;
using mpctl::proto::TaskState;
using mpctl::proto::TaskStatus;
using nlohmann::json;

namespace {

// 2026-11-24T20:37:06.123Z
constexpr int64_t k_status_t0 = 1795552626123;

TaskStatus finished_status() {
    TaskStatus s;
    s.id = 42;
    s.name = "build";
    s.state = TaskState::failed;
    s.reason = FailReason::exit;
    s.exit_code = 3;
    s.argv = std::vector<std::string>{"make", "-j4"};
    s.cwd = "/src";
    s.pool = "gpu";
    s.priority = -2;
    s.labels = {{"team", "infra"}};
    s.after = {7, 8};
    s.submitted_at_ms = k_status_t0;
    s.started_at_ms = k_status_t0 + 1500;
    s.finished_at_ms = k_status_t0 + 4001;
    s.attempts = 2;
    s.retries = 1;
    s.timeout_s = 12.5;
    s.stdout_path = "/state/output/0/42.stdout";
    s.stderr_path = "/state/output/0/42.stderr";
    s.error = "exit code 3";
    return s;
}

TaskStatus with_state(TaskState state, FailReason reason = FailReason::none) {
    TaskStatus s;
    s.id = 1;
    s.state = state;
    s.reason = reason;
    return s;
}

}  // namespace

TEST_CASE("state and reason names round trip", "[unit][task_status]") {
    for (auto st : {TaskState::pending, TaskState::running, TaskState::succeeded, TaskState::failed,
                    TaskState::cancelled}) {
        CHECK(mpctl::proto::parse_task_state(mpctl::proto::to_string(st)) == st);
    }
    for (auto r : {FailReason::exit, FailReason::signal, FailReason::timeout, FailReason::spawn,
                   FailReason::lost, FailReason::dependency}) {
        CHECK(mpctl::proto::parse_fail_reason(mpctl::proto::to_string(r)) == r);
    }
    CHECK(mpctl::proto::to_string(TaskState::succeeded) == "succeeded");
    CHECK(mpctl::proto::to_string(FailReason::dependency) == "dependency");
    CHECK_FALSE(mpctl::proto::parse_task_state("done"));
    CHECK_FALSE(mpctl::proto::parse_task_state(""));
    CHECK_FALSE(mpctl::proto::parse_fail_reason(""));
    CHECK_FALSE(mpctl::proto::parse_fail_reason("EXIT"));
}

TEST_CASE("only succeeded, failed and cancelled are finished", "[unit][task_status]") {
    CHECK_FALSE(mpctl::proto::is_finished(TaskState::pending));
    CHECK_FALSE(mpctl::proto::is_finished(TaskState::running));
    CHECK(mpctl::proto::is_finished(TaskState::succeeded));
    CHECK(mpctl::proto::is_finished(TaskState::failed));
    CHECK(mpctl::proto::is_finished(TaskState::cancelled));
}

TEST_CASE("the status object has every documented field, with null for absent values",
          "[unit][task_status]") {
    TaskStatus s;
    s.id = 5;
    s.argv = std::vector<std::string>{"true"};
    s.submitted_at_ms = k_status_t0;
    json j = mpctl::proto::to_json(s);
    for (const char* key : {"id", "name", "state", "reason", "exit_code", "signal", "argv", "shell", "cwd",
                            "pool", "labels", "submitted_at", "started_at", "finished_at", "duration_ms",
                            "attempts", "pid", "stdout_path", "stderr_path"}) {
        INFO(key);
        CHECK(j.contains(key));
    }
    CHECK(j["id"] == 5);
    CHECK(j["state"] == "pending");
    for (const char* key : {"name", "reason", "exit_code", "signal", "shell", "started_at", "finished_at",
                            "duration_ms", "pid"}) {
        INFO(key);
        CHECK(j[key].is_null());
    }
    CHECK(j["submitted_at"] == "2026-11-24T20:37:06.123Z");
}

TEST_CASE("a finished status survives to_json and status_from_json", "[unit][task_status]") {
    TaskStatus a = finished_status();
    json j = mpctl::proto::to_json(a);
    CHECK(j["submitted_at"] == "2026-11-24T20:37:06.123Z");
    CHECK(j["started_at"] == "2026-11-24T20:37:07.623Z");
    CHECK(j["finished_at"] == "2026-11-24T20:37:10.124Z");
    CHECK(j["duration_ms"] == 2501);
    CHECK(j["reason"] == "exit");

    TaskStatus b = status_from_json(j);
    CHECK(b.id == a.id);
    CHECK(b.name == a.name);
    CHECK(b.state == a.state);
    CHECK(b.reason == a.reason);
    CHECK(b.exit_code == a.exit_code);
    CHECK(b.signal == a.signal);
    CHECK(b.argv == a.argv);
    CHECK(b.shell == a.shell);
    CHECK(b.cwd == a.cwd);
    CHECK(b.pool == a.pool);
    CHECK(b.priority == a.priority);
    CHECK(b.labels == a.labels);
    CHECK(b.after == a.after);
    CHECK(b.submitted_at_ms == a.submitted_at_ms);
    CHECK(b.started_at_ms == a.started_at_ms);
    CHECK(b.finished_at_ms == a.finished_at_ms);
    CHECK(b.attempts == a.attempts);
    CHECK(b.retries == a.retries);
    CHECK(b.timeout_s == a.timeout_s);
    CHECK(b.pid == a.pid);
    CHECK(b.stdout_path == a.stdout_path);
    CHECK(b.stderr_path == a.stderr_path);
    CHECK(b.error == a.error);
    CHECK(mpctl::proto::to_json(b) == j);
}

TEST_CASE("a running shell task with a pid survives the round trip", "[unit][task_status]") {
    TaskStatus a;
    a.id = 9;
    a.state = TaskState::running;
    a.shell = "sleep 10 | cat";
    a.pid = 4321;
    a.submitted_at_ms = 0;  // the epoch itself
    a.started_at_ms = 999;
    a.attempts = 1;
    json j = mpctl::proto::to_json(a);
    CHECK(j["argv"].is_null());
    CHECK(j["shell"] == "sleep 10 | cat");
    CHECK(j["submitted_at"] == "1970-01-01T00:00:00.000Z");
    CHECK(j["started_at"] == "1970-01-01T00:00:00.999Z");
    CHECK(j["finished_at"].is_null());
    TaskStatus b = status_from_json(j);
    CHECK(b.state == TaskState::running);
    CHECK(b.reason == FailReason::none);
    CHECK_FALSE(b.argv);
    CHECK(b.shell == a.shell);
    CHECK(b.pid == 4321);
    CHECK(b.submitted_at_ms == 0);
    CHECK(b.started_at_ms == 999);
    CHECK_FALSE(b.finished_at_ms);
}

TEST_CASE("status_from_json accepts times with offsets and other fraction lengths", "[unit][task_status]") {
    json j = {{"id", 1},
              {"state", "succeeded"},
              {"submitted_at", "2026-11-24T21:37:06.1234+01:00"},
              {"started_at", "2026-11-24T20:37:07Z"},
              {"finished_at", "2026-11-24T15:37:08.5-05:00"}};
    TaskStatus s = status_from_json(j);
    CHECK(s.submitted_at_ms == k_status_t0);
    CHECK(s.started_at_ms == k_status_t0 - 123 + 1000);
    CHECK(s.finished_at_ms == k_status_t0 - 123 + 2500);
}

TEST_CASE("status_from_json refuses what is not a status object", "[unit][task_status]") {
    CHECK_THROWS_AS(status_from_json(json::array()), RequestError);
    CHECK_THROWS_AS(status_from_json({{"state", "pending"}}), RequestError);          // no id
    CHECK_THROWS_AS(status_from_json({{"id", 1}}), RequestError);                     // no state
    CHECK_THROWS_AS(status_from_json({{"id", 1}, {"state", "done"}}), RequestError);  // unknown state
    CHECK_THROWS_AS(status_from_json({{"id", 1}, {"state", "failed"}, {"reason", "oops"}}), RequestError);
    CHECK_THROWS_AS(status_from_json({{"id", 1}, {"state", "pending"}, {"submitted_at", 12}}), RequestError);
    CHECK_THROWS_AS(status_from_json({{"id", 1}, {"state", "pending"}, {"submitted_at", "yesterday"}}),
                    RequestError);
    CHECK_THROWS_AS(status_from_json({{"id", "1"}, {"state", "pending"}}), RequestError);
}

TEST_CASE("duration_ms is absent before a task starts and the run time once it finished",
          "[unit][task_status]") {
    TaskStatus s;
    CHECK_FALSE(s.duration_ms());
    s.started_at_ms = 1000;
    s.finished_at_ms = 3500;
    CHECK(s.duration_ms() == 2500);
}

TEST_CASE("a succeeded task mirrors as 0", "[unit][task_status]") {
    TaskStatus s = with_state(TaskState::succeeded);
    s.exit_code = 0;
    CHECK(mirror_exit_code(s) == 0);
}

TEST_CASE("a task that failed by exit mirrors its own exit code", "[unit][task_status]") {
    for (int code : {1, 2, 42, 123}) {
        TaskStatus s = with_state(TaskState::failed, FailReason::exit);
        s.exit_code = code;
        CHECK(mirror_exit_code(s) == code);
    }
}

TEST_CASE("a timed out task mirrors as 124, whatever it exited with", "[unit][task_status]") {
    TaskStatus s = with_state(TaskState::failed, FailReason::timeout);
    CHECK(mirror_exit_code(s) == 124);
    s.signal = SIGTERM;
    CHECK(mirror_exit_code(s) == 124);
    s.signal.reset();
    s.exit_code = 1;
    CHECK(mirror_exit_code(s) == 124);
}

TEST_CASE("cancelled, lost and dependency-failed tasks mirror as 125", "[unit][task_status]") {
    CHECK(mirror_exit_code(with_state(TaskState::cancelled)) == 125);
    TaskStatus cancelled_after_kill = with_state(TaskState::cancelled);
    cancelled_after_kill.signal = SIGTERM;
    CHECK(mirror_exit_code(cancelled_after_kill) == 125);
    CHECK(mirror_exit_code(with_state(TaskState::failed, FailReason::lost)) == 125);
    CHECK(mirror_exit_code(with_state(TaskState::failed, FailReason::dependency)) == 125);
}

TEST_CASE("a task that could not be spawned mirrors 127 for not found and 126 otherwise",
          "[unit][task_status]") {
    TaskStatus not_found = with_state(TaskState::failed, FailReason::spawn);
    not_found.exit_code = 127;
    CHECK(mirror_exit_code(not_found) == 127);
    TaskStatus not_executable = with_state(TaskState::failed, FailReason::spawn);
    not_executable.exit_code = 126;
    CHECK(mirror_exit_code(not_executable) == 126);
    CHECK(mirror_exit_code(with_state(TaskState::failed, FailReason::spawn)) == 126);
}

TEST_CASE("a task killed by signal N mirrors 128+N", "[unit][task_status]") {
    for (int sig : {SIGHUP, SIGINT, SIGKILL, SIGSEGV, SIGTERM, SIGPIPE}) {
        TaskStatus s = with_state(TaskState::failed, FailReason::signal);
        s.signal = sig;
        CHECK(mirror_exit_code(s) == 128 + sig);
    }
    TaskStatus s = with_state(TaskState::failed, FailReason::signal);
    s.signal = SIGKILL;
    CHECK(mirror_exit_code(s) == 137);
}

TEST_CASE("an unfinished task mirrors 124 (the wait timed out)", "[unit][task_status]") {
    CHECK(mirror_exit_code(with_state(TaskState::pending)) == 124);
    CHECK(mirror_exit_code(with_state(TaskState::running)) == 124);
}

TEST_CASE("the status text survives parsing back, escapes included", "[unit][task_status]") {
    // to_json is to_json_text parsed: what matters is that the text reads back as the same status.
    auto round_trips = [](const TaskStatus& s) {
        std::string text = mpctl::proto::to_json_text(s);
        CHECK(mpctl::proto::to_json_text(mpctl::proto::status_from_json(json::parse(text))) == text);
    };
    round_trips(finished_status());
    round_trips(with_state(TaskState::pending));

    TaskStatus shell = finished_status();
    shell.argv.reset();
    shell.shell = "echo \"quoted\" \\ and\ttab \xe2\x82\xac";
    shell.name.reset();
    shell.error.reset();
    shell.labels.clear();
    shell.after.clear();
    shell.timeout_s = 30;
    shell.pid = 1234;
    shell.signal = 9;
    shell.exit_code.reset();
    round_trips(shell);
    CHECK(mpctl::proto::to_json(shell)["shell"] == *shell.shell);
    CHECK(mpctl::proto::to_json(shell)["timeout"] == 30.0);

    TaskStatus pipeline = finished_status();
    pipeline.argv.reset();
    pipeline.truncated = true;
    pipeline.stages = std::vector<mpctl::proto::StageStatus>{
        {{"yes"}, std::nullopt, "succeeded", std::nullopt, 13, "/s/42.0.stderr"},
        {{"head", "-n", "1"}, 77, "running", std::nullopt, std::nullopt, "/s/42.1.stderr"}};
    round_trips(pipeline);
    json p = mpctl::proto::to_json(pipeline);
    CHECK(p["stages"][0]["signal"] == 13);
    CHECK(p["stages"][1]["argv"] == json({"head", "-n", "1"}));
    CHECK(p["stages"][1]["pid"] == 77);
    CHECK(p["truncated"] == true);

    // Control characters are escaped; bytes that are not UTF-8 come back exactly.
    TaskStatus odd = finished_status();
    odd.cwd = std::string("/bad\xff\xfe/dir");
    odd.labels = {{"k\x01", "v\n"}};
    json o = mpctl::proto::to_json(odd);
    CHECK(o["cwd"] == "/bad\xff\xfe/dir");
    CHECK(mpctl::proto::to_json_text(odd).find(R"("/bad\udcff\udcfe/dir")") != std::string::npos);
    CHECK(o["labels"] == json({{"k\x01", "v\n"}}));
}
