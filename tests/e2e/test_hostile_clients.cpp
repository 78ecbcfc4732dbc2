// Clients that mean harm, or behave as if they did: a line that nests forever, ids a double cannot hold,
// waits abandoned by clients that left, a flood of pipelined requests nobody reads, more connections than
// descriptors. The daemon answers or turns each away, keeps its memory and descriptors bounded, and serves
// the next client.

#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

namespace {

// What PID's descriptors point at (readlink of /proc/PID/fd/*).
std::vector<std::string> descriptor_targets(pid_t pid) {
    std::vector<std::string> targets;
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            if (e->d_name[0] == '.') {
                continue;
            }
            char target[512];
            ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
            targets.push_back(n > 0 ? std::string(target, static_cast<size_t>(n)) : "?");
        }
        ::closedir(d);
    }
    return targets;
}

size_t open_descriptors(pid_t pid) {
    return descriptor_targets(pid).size();
}

// What PID's descriptors are, kind by kind ("12 socket, 9 /tmp/.../1.stdout, ..."): a failure's first clue.
std::string descriptor_kinds(pid_t pid) {
    std::map<std::string, int> kinds;
    for (const auto& t : descriptor_targets(pid)) {
        ++kinds[t.substr(0, t.find(':'))];
    }
    std::string out;
    for (const auto& [kind, count] : kinds) {
        out += (out.empty() ? "" : ", ") + std::to_string(count) + " " + kind;
    }
    return out;
}

// The last N lines of TEXT, the last first.
std::string last_lines(const std::string& text, size_t n) {
    auto lines = lines_of(text);
    std::string out;
    for (size_t i = 0; i < n && i < lines.size(); ++i) {
        out += lines[lines.size() - 1 - i] + "\n";
    }
    return out;
}

// A field of /proc/PID/status in kB ("VmHWM", "VmRSS").
long status_kb(pid_t pid, const std::string& field) {
    for (const auto& line : lines_of(slurp("/proc/" + std::to_string(pid) + "/status"))) {
        if (line.rfind(field + ":", 0) == 0) {
            return std::atol(line.c_str() + field.size() + 1);
        }
    }
    return -1;
}

// Resets VmHWM to the current RSS (writing 5 to clear_refs), so that a later VmHWM is the peak since now.
void reset_peak(pid_t pid) {
    std::ofstream("/proc/" + std::to_string(pid) + "/clear_refs") << "5";
}

void check_serving(const DaemonFixture& d) {
    auto r = d.mpctl({"daemon", "status"});
    INFO(r.err << d.log());
    CHECK(r.exit_code == 0);
}

json parse_reply(const std::optional<std::string>& line) {
    REQUIRE(line);
    json j = json::parse(*line, nullptr, false);
    INFO(*line);
    REQUIRE_FALSE(j.is_discarded());
    return j;
}

// Options that start mpctld under prlimit with the open-files limit SOFT_HARD ("64:64"); nullopt, and a
// warning, where prlimit (util-linux) is missing.
std::optional<DaemonOptions> under_open_files_limit(const std::string& soft_hard) {
    if (::access("/usr/bin/prlimit", X_OK) != 0) {
        WARN("needs prlimit (util-linux) to start mpctld with a descriptor limit; not checked here");
        return std::nullopt;
    }
    DaemonOptions o;
    o.launcher = {"/usr/bin/prlimit", "--nofile=" + soft_hard, "--"};
    return o;
}

}  // namespace

TEST_CASE(
    "a request nested 130,000 levels deep is refused and the daemon lives (params, id, notification, "
    "unknown method)",
    "[e2e][hostile]") {
    DaemonFixture d;
    const size_t n = 130000;
    std::string deep = std::string(n, '[') + std::string(n, ']');
    std::vector<std::string> lines{
        R"({"jsonrpc":"2.0","id":"deep","method":"daemon.methods","params":{"x":)" + deep + "}}",
        R"({"jsonrpc":"2.0","id":)" + deep + R"(,"method":"daemon.methods"})",
        R"({"jsonrpc":"2.0","method":"daemon.methods","params":{"x":)" + deep + "}}",
        R"({"jsonrpc":"2.0","id":1,"method":"no.such","params":{"x":)" + deep + "}}",
        R"({"jsonrpc":"2.0","id":2,"method":"task.submit","params":{"argv":)" + std::string(n, '[') + "}",
    };
    auto c = d.connect();
    for (const auto& line : lines) {
        INFO(line.substr(0, 80));
        c->send_raw(line + "\n");
        json reply = parse_reply(c->read_line());
        CHECK(reply["error"]["code"] == -32600);
        CHECK_THAT(reply["error"]["message"].get<std::string>(), Contains("nested deeper than 64 levels"));
        CHECK(reply["id"].is_null());
    }
    CHECK(d.running());
    check_serving(d);
}

TEST_CASE("an id is echoed exactly as it was written, and one that is not a whole number is refused",
          "[e2e][hostile]") {
    DaemonFixture d;
    auto c = d.connect();
    for (std::string id : {"99999999999999999999999", "1e3", "1.0", "-7", "18446744073709551615", "\"x\""}) {
        c->send_raw(R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"daemon.methods"})" + "\n");
        auto line = c->read_line();
        REQUIRE(line);
        INFO(*line);
        CHECK_THAT(*line, Contains(R"("id":)" + id + ","));
        CHECK_THAT(*line, Contains(R"("result":)"));
    }
    c->send_raw(R"({"jsonrpc":"2.0","id":1.5,"method":"daemon.methods"})"
                "\n");
    json reply = parse_reply(c->read_line());
    CHECK(reply["error"]["code"] == -32600);
    CHECK(reply["id"].is_null());
}

TEST_CASE("params that are not an object, and members the envelope does not have, are invalid requests",
          "[e2e][hostile]") {
    DaemonFixture d;
    auto c = d.connect();
    for (std::string tail : {R"("params":null)", R"("params":[])", R"("params":[1])", R"("extra":1)"}) {
        c->send_raw(R"({"jsonrpc":"2.0","id":4,"method":"daemon.status",)" + tail + "}\n");
        json reply = parse_reply(c->read_line());
        INFO(tail << " -> " << reply.dump());
        CHECK(reply["error"]["code"] == -32600);
        CHECK(reply["id"] == 4);
    }
}

TEST_CASE("clients that leave with a wait, a log follower or as_completed parked leave no descriptor behind",
          "[e2e][hostile]") {
    DaemonFixture d;
    int64_t id = d.submit({"--", "sh", "-c", "echo started; exec sleep 600"});
    d.wait_for_state(id, "running");
    // One of each first, so that whatever the daemon opens once (the log's inotify) is in the baseline.
    const std::vector<std::string> requests{
        R"({"jsonrpc":"2.0","id":1,"method":"task.wait","params":{"id":)" + str(id) + "}}\n",
        R"({"jsonrpc":"2.0","id":2,"method":"task.logs","params":{"id":)" + str(id) + R"(,"follow":true}})" +
            "\n",
        R"({"jsonrpc":"2.0","id":3,"method":"task.as_completed","params":{"ids":[)" + str(id) + "]}}\n",
    };
    auto leave_with = [&](const std::string& request) {
        auto c = d.connect();
        c->send_raw(request);
        // The daemon has taken the request once it answers the next one on the same connection.
        auto reply = c->call("daemon.status", json::object());
        REQUIRE(reply.contains("result"));
    };
    for (const auto& r : requests) {
        leave_with(r);
    }
    size_t baseline = 0;
    REQUIRE(eventually([&] {
        size_t now = open_descriptors(d.pid());
        bool steady = now == baseline;
        baseline = now;
        return steady;
    }));
    for (int i = 0; i < 50; ++i) {
        for (const auto& r : requests) {
            leave_with(r);
        }
    }
    size_t now = 0;
    CHECK(
        eventually([&] { return (now = open_descriptors(d.pid())) <= baseline; }, std::chrono::seconds(30)));
    INFO("baseline " << baseline << ", now " << now);
    CHECK(now <= baseline);
    CHECK(d.status(id)["state"] == "running");
    check_serving(d);
}

TEST_CASE("a hundred pipelined task.list nobody reads are answered one at a time, not all built at once",
          "[e2e][hostile]") {
    // Under AddressSanitizer freed memory waits in a quarantine (256 MB) before reuse, which would count
    // every answer ever built; without it the daemon's peak is what it holds at once, as in a normal build.
    DaemonOptions o;
    const char* asan = std::getenv("ASAN_OPTIONS");
    o.process.env_set["ASAN_OPTIONS"] =
        std::string(asan != nullptr ? asan : "") + ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0";
    DaemonFixture d(o);
    // 1,000 finished tasks: each task.list answer is some 500 KB of JSON.
    auto c = d.connect();
    json tasks = json::array();
    for (int i = 0; i < 1000; ++i) {
        tasks.push_back({{"argv", {"true"}}});
    }
    auto batch = c->call("task.submit_batch", {{"tasks", tasks}});
    REQUIRE(batch.contains("result"));
    auto last = c->call("task.wait", {{"id", batch["result"]["ids"].back()}});
    REQUIRE(last.contains("result"));
    auto one = c->call("task.list", json::object());
    REQUIRE(one.contains("result"));
    size_t answer_bytes = one["result"].dump().size();
    REQUIRE(answer_bytes > 200 * 1024);

    reset_peak(d.pid());
    long before = status_kb(d.pid(), "VmRSS");
    std::string flood;
    for (int i = 0; i < 100; ++i) {
        flood += R"({"jsonrpc":"2.0","id":)" + std::to_string(i) + R"(,"method":"task.list"})" + "\n";
    }
    c->send_raw(flood);
    // Another client is served meanwhile.
    check_serving(d);
    for (int i = 0; i < 100; ++i) {
        json reply = parse_reply(c->read_line());
        REQUIRE(reply["id"] == i);
    }
    long peak = status_kb(d.pid(), "VmHWM");
    INFO("one answer " << answer_bytes / 1024 << " KB; RSS before " << before << " KB, peak " << peak
                       << " KB");
    // All of them built at once would be 100 answers (40 MB and more); one at a time is a few answers.
    CHECK(peak - before < static_cast<long>(10 * answer_bytes / 1024));
}

TEST_CASE("connections past max_connections are told busy and closed, and a place that frees is taken again",
          "[e2e][hostile]") {
    DaemonOptions o;
    TempDir config_dir;
    std::string config = config_dir.write("mpctld.toml", "max_connections = 3\n");
    o.extra_args = {"--config", config};
    DaemonFixture d(o);
    std::vector<std::unique_ptr<RpcConnection>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(d.connect());
        REQUIRE(held.back()->call("daemon.status", json::object()).contains("result"));
    }
    auto extra = d.connect();
    json reply = parse_reply(extra->read_line());
    CHECK(reply["error"]["code"] == -32002);
    CHECK_THAT(reply["error"]["message"].get<std::string>(), Contains("too many connections"));
    CHECK_FALSE(extra->read_line());  // and closed
    // mpctl says why, whether its request went out before the daemon closed the connection or not (a
    // broken pipe is no explanation), and exits with the code for busy.
    for (int i = 0; i < 10; ++i) {
        auto r = d.mpctl({"daemon", "status"});
        INFO(r.err);
        CHECK(r.exit_code == 5);
        CHECK_THAT(r.err, Contains("too many connections"));
    }
    held.pop_back();
    // The place is free once the daemon has read the closed connection's end, which it does in its own time:
    // until then a new connection is told busy and closed (no answer to its call), and is tried again.
    CHECK(eventually([&] {
        auto again = d.connect();
        try {
            auto r = again->call("daemon.status", json::object(), nullptr, std::chrono::seconds(10));
            return r.contains("result");
        } catch (const std::exception&) {
            return false;
        }
    }));
}

TEST_CASE(
    "near its descriptor limit, the daemon turns clients away with an answer, keeps enough to run "
    "tasks, logs it a few times, and recovers",
    "[e2e][hostile]") {
    auto o = under_open_files_limit("64:64");
    if (!o) {
        return;
    }
    DaemonFixture d(*o);
    int64_t id = d.submit({"--", "sh", "-c", "echo started; exec sleep 600"});
    d.wait_for_state(id, "running");
    auto control = d.connect();
    // Log followers hold their connection and the log file: descriptors run short before max_connections
    // (half of 64) is reached.
    std::vector<std::unique_ptr<RpcConnection>> held;
    json refusal;
    for (int i = 0; i < 64 && refusal.is_null(); ++i) {
        auto c = d.connect();
        // Turned away at accept, the connection may be closed before the request goes out; the answer
        // is there to read either way.
        (void)c->try_send_raw(R"({"jsonrpc":"2.0","id":1,"method":"task.logs","params":{"id":)" + str(id) +
                              R"(,"follow":true}})" + "\n");
        auto line = c->read_line(std::chrono::seconds(60));
        // What a failure needs first, on one line (CI shows the start of a long report): how the read
        // ended, the daemon's descriptors (none readable: it is exiting), its last words.
        auto kinds = descriptor_kinds(d.pid());
        INFO("connection " << i << ": " << c->why_no_line() << "; the daemon "
                           << (!d.running()    ? std::string("is gone")
                               : kinds.empty() ? std::string("has no descriptor left: exiting?")
                                               : "has descriptors " + kinds)
                           << "; its log, last line first: " << last_lines(d.log(), 6));
        REQUIRE(line);
        json first = parse_reply(line);
        if (first.contains("error")) {
            refusal = first;
        }
        held.push_back(std::move(c));
    }
    INFO(d.log());
    REQUIRE_FALSE(refusal.is_null());
    INFO(refusal.dump());
    // Turned away at accept (busy), or accepted with no descriptor left for the log file (io_error): an
    // answer either way, never a stream that stays silent.
    CHECK((refusal["error"]["code"] == -32002 || refusal["error"]["code"] == -32007));
    // What it kept back runs a task while the followers still hold theirs.
    auto submitted = control->call("task.submit", {{"argv", {"echo", "kept"}}});
    REQUIRE(submitted.contains("result"));
    auto waited = control->call("task.wait", {{"id", submitted["result"]["id"]}});
    REQUIRE(waited.contains("result"));
    CHECK(waited["result"]["tasks"][0]["state"] == "succeeded");
    // More clients meanwhile are all answered the same way, not left hanging in the backlog.
    for (int i = 0; i < 20; ++i) {
        auto c = d.connect();
        json r = parse_reply(c->read_line(std::chrono::seconds(60)));
        CHECK(r["error"]["code"] == -32002);
    }
    held.clear();
    // Once they are gone the daemon serves again, tasks included.
    CHECK(eventually([&] { return d.mpctl({"daemon", "status"}).exit_code == 0; }));
    auto run = d.mpctl({"run", "--", "echo", "ok"});
    CHECK(run.exit_code == 0);
    CHECK(run.out == "ok\n");
    // The log says so a few times, not once per refused client.
    size_t lines = 0;
    for (const auto& l : lines_of(d.log())) {
        if (l.find("out of file descriptors") != std::string::npos ||
            l.find("accept:") != std::string::npos || l.find("turned a client away") != std::string::npos) {
            ++lines;
        }
    }
    CHECK(lines >= 1);
    CHECK(lines <= 6);
}

TEST_CASE("tasks get the descriptor limit mpctld was started with, not the one it raised for itself",
          "[e2e][hostile]") {
    auto o = under_open_files_limit("1024:4096");
    if (!o) {
        return;
    }
    DaemonFixture d(*o);
    auto r = d.mpctl({"run", "--shell", "--", "ulimit -Sn; ulimit -Hn"});
    CHECK(r.out == "1024\n4096\n");
    bool raised = false;
    for (const auto& line : lines_of(slurp("/proc/" + std::to_string(d.pid()) + "/limits"))) {
        if (line.rfind("Max open files", 0) == 0) {
            raised = line.find("4096                 4096") != std::string::npos;
            INFO(line);
        }
    }
    CHECK(raised);
    // A task's own limit still wins.
    auto own = d.mpctl({"run", "--rlimit", "nofile=256", "--shell", "--", "ulimit -Sn"});
    CHECK(own.out == "256\n");
}
