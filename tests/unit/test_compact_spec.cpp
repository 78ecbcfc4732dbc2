// CompactSpec (a task's spec as the daemon keeps it), SharedStrings and ReadyQueue: the parts that make a
// queued task small.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/daemon/tasks/compact_spec.hpp>
#include <mpctl/daemon/tasks/ready_queue.hpp>
#include <mpctl/daemon/tasks/shared_strings.hpp>
#include <mpctl/proto/task_spec.hpp>

using mpctl::daemon::CompactSpec;
using mpctl::daemon::ReadyQueue;
using mpctl::daemon::SharedStrings;
using mpctl::proto::parse_task_spec;
using mpctl::proto::to_json;
using nlohmann::json;

namespace {

// The spec kept and given back is the spec parsed, field for field.
void check_round_trip(const json& spec) {
    INFO(spec.dump());
    SharedStrings strings;
    auto parsed = parse_task_spec(spec);
    CompactSpec kept(parsed, &strings);
    CHECK(to_json(kept.expanded()) == to_json(parsed));
    CHECK(kept.expanded().env == parsed.env);
    CHECK(kept.stage_argvs() == parsed.stage_argvs());
    CHECK(kept.argv() == parsed.argv);
    CHECK((kept.shell() != nullptr) == parsed.shell.has_value());
    CHECK(kept.pipeline() == parsed.pipeline);
    CHECK(kept.cwd() == parsed.cwd);
    CHECK(kept.pool() == parsed.pool);
    CHECK(kept.priority() == parsed.priority);
    CHECK(kept.retries() == parsed.retries);
    CHECK(kept.name() == parsed.name);
    CHECK(kept.labels() == parsed.labels);
    CHECK(kept.stdin_path() == parsed.stdin_path);
    CHECK(kept.stdin_passed() == parsed.stdin_passed);
    CHECK(kept.timeout_s() == parsed.timeout_s);
    CHECK(kept.kill_after_s() == parsed.kill_after_s);
    CHECK(kept.retry_delay_s() == parsed.retry_delay_s);
    CHECK(kept.after() == parsed.after);
    CHECK(kept.nice() == parsed.nice);
    CHECK(kept.umask() == parsed.umask);
    CHECK(kept.rlimits() == parsed.rlimits);
    CHECK(kept.max_output() == parsed.max_output);
    CHECK(kept.cgroup() == parsed.cgroup);
    CompactSpec copy = kept;  // a deep copy: the same spec
    CHECK(to_json(copy.expanded()) == to_json(parsed));
}

}  // namespace

TEST_CASE("a compact spec gives back the spec it was made of", "[unit][compact_spec]") {
    check_round_trip({{"argv", {"true"}}});
    check_round_trip(
        {{"argv", {"printf", "", "a b", "x"}}, {"cwd", "/a/long/working/directory/of/a/project"}});
    check_round_trip({{"shell", "echo hi | wc -c"}, {"pool", "gpu"}, {"priority", -3}});
    check_round_trip({{"pipeline", {{"yes"}, {"head", "-1"}}}, {"cwd", "/tmp"}});
    check_round_trip({{"argv", {"job"}},
                      {"cwd", "/src"},
                      {"env", {{"A", "1"}}},
                      {"name", "build"},
                      {"labels", {{"k", "v"}}},
                      {"stdin", "in.txt"},
                      {"timeout", 2.5},
                      {"kill_after", 0},
                      {"retries", 3},
                      {"retry_delay", 0.25},
                      {"after", {7, 9}},
                      {"pool", "p"},
                      {"priority", 4},
                      {"nice", 5},
                      {"umask", "027"},
                      {"rlimits", {{"nofile", 64}, {"core", "unlimited"}}},
                      {"max_output", 1024},
                      {"cgroup", true}});
    check_round_trip({{"argv", {"cat"}}, {"stdin_fd", true}});
}

TEST_CASE("compact specs share the cwd and pool strings of a SharedStrings", "[unit][compact_spec]") {
    SharedStrings strings;
    json spec = {
        {"argv", {"true"}}, {"cwd", "/home/someone/projects/something"}, {"pool", "a-long-pool-name"}};
    CompactSpec a(parse_task_spec(spec), &strings);
    CompactSpec b(parse_task_spec(spec), &strings);
    CHECK(&a.cwd() == &b.cwd());
    CHECK(&a.pool() == &b.pool());
    CompactSpec c(parse_task_spec(spec), nullptr);  // as read back from the journal: its own copies
    CHECK(&c.cwd() != &a.cwd());
    c.share_strings(strings);
    CHECK(&c.cwd() == &a.cwd());
    CHECK(&c.pool() == &a.pool());
    CHECK(c.cwd() == "/home/someone/projects/something");
}

TEST_CASE("a compact spec lets go of its environment", "[unit][compact_spec]") {
    CompactSpec s(parse_task_spec({{"argv", {"true"}}, {"env", {{"A", "1"}}}}), nullptr);
    REQUIRE(s.env());
    CHECK(s.env()->at("A") == "1");
    s.set_env(nullptr);
    CHECK_FALSE(s.env());
    CHECK_FALSE(s.expanded().env);
}

TEST_CASE("SharedStrings hands out one copy per text, and forgets what nobody holds",
          "[unit][compact_spec]") {
    SharedStrings strings;
    auto a = strings.get("/some/where/far/away");
    auto b = strings.get("/some/where/far/away");
    CHECK(a == b);
    CHECK(*a == "/some/where/far/away");
    CHECK(strings.get("/else/where/far/away") != a);
    CHECK(strings.size() == 2);
    strings.sweep();  // the second one had no holder left
    CHECK(strings.size() == 1);
    a.reset();
    b.reset();
    auto c = strings.get("/some/where/far/away");  // made again
    CHECK(*c == "/some/where/far/away");
    for (int i = 0; i < 5000; ++i) {
        (void)strings.get("/pool/" + std::to_string(i));  // each dropped at once: swept now and then
    }
    CHECK(strings.size() < 2100);
}

TEST_CASE("ReadyQueue pops by priority, highest first, then in push order", "[unit][ready_queue]") {
    ReadyQueue q;
    q.push(0, 1, 10);
    q.push(5, 2, 20);
    q.push(0, 3, 30);
    q.push(-1, 4, 40);
    q.push(5, 5, 50);
    CHECK(q.size() == 5);
    std::vector<int64_t> seen;
    q.visit([&](int64_t id) {
        seen.push_back(id);
        return seen.size() < 3;
    });
    CHECK(seen == std::vector<int64_t>{20, 50, 10});
    std::vector<int64_t> order;
    while (auto id = q.pop()) {
        order.push_back(*id);
    }
    CHECK(order == std::vector<int64_t>{20, 50, 10, 30, 40});
    CHECK(q.empty());
    CHECK_FALSE(q.pop());
}

TEST_CASE("ReadyQueue skips what was taken out of it, wherever it stood", "[unit][ready_queue]") {
    ReadyQueue q;
    for (uint64_t seq = 1; seq <= 6; ++seq) {
        q.push(0, seq, static_cast<int64_t>(seq * 10));
    }
    q.erase(0, 1);  // the front
    q.erase(0, 6);  // the back
    q.erase(0, 3);  // the middle
    CHECK(q.size() == 3);
    std::vector<int64_t> seen;
    q.visit([&](int64_t id) {
        seen.push_back(id);
        return true;
    });
    CHECK(seen == std::vector<int64_t>{20, 40, 50});
    q.push(0, 7, 70);
    std::vector<int64_t> order;
    while (auto id = q.pop()) {
        order.push_back(*id);
    }
    CHECK(order == std::vector<int64_t>{20, 40, 50, 70});
    CHECK(q.empty());
}

TEST_CASE("ReadyQueue stays right through many erasures in the middle", "[unit][ready_queue]") {
    ReadyQueue q;
    const uint64_t n = 5000;
    for (uint64_t seq = 1; seq <= n; ++seq) {
        q.push(static_cast<int>(seq % 3), seq, static_cast<int64_t>(seq));
    }
    for (uint64_t seq = 2; seq < n; seq += 2) {  // every even one but the last
        q.erase(static_cast<int>(seq % 3), seq);
    }
    CHECK(q.size() == n / 2 + 1);
    std::vector<int64_t> order;
    while (auto id = q.pop()) {
        order.push_back(*id);
    }
    REQUIRE(order.size() == n / 2 + 1);
    for (size_t i = 1; i < order.size(); ++i) {
        int pa = static_cast<int>(order[i - 1] % 3);
        int pb = static_cast<int>(order[i] % 3);
        CHECK((pa > pb || (pa == pb && order[i - 1] < order[i])));
    }
}
