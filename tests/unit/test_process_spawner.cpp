// ProcessSpawner with real processes: its spawn thread starts them, the loop hears each outcome and each
// exit once, in order, however many spawns are in flight. (Run under ThreadSanitizer in CI: this is the
// hand-over between the loop and the spawn thread.)

#include <map>
#include <thread>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/process_spawner.hpp>

#include "temp_dir.hpp"

using mpctl::daemon::ExitInfo;
using mpctl::daemon::ProcessSpawner;
using mpctl::daemon::SpawnSpec;
using mpctl::daemon::SpawnStage;
using mpctl::test::TempDir;

namespace {

auto env() {
    return std::make_shared<const mpctl::daemon::EnvBlock>(std::vector<std::string>{"PATH=/usr/bin:/bin"});
}

SpawnSpec spec_of(const TempDir& dir, const std::string& name, std::vector<std::vector<std::string>> stages) {
    SpawnSpec s;
    for (size_t i = 0; i < stages.size(); ++i) {
        SpawnStage st;
        st.argv = std::move(stages[i]);
        st.stderr_path = dir / (name + "." + std::to_string(i) + ".err");
        s.stages.push_back(std::move(st));
    }
    s.cwd = dir.path();
    s.env = env();
    s.stdout_path = dir / (name + ".out");
    return s;
}

std::string slurp(const std::string& path) {
    return mpctl::common::read_file(path).value_or("");
}

// Runs IO until DONE or 60 s have passed.
void run_until(asio::io_context& io, const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        io.run_for(std::chrono::milliseconds(50));
        io.restart();
    }
}

}  // namespace

TEST_CASE(
    "a hundred tasks spawned at once, on the loop or by the spawn thread, each start once and exit once",
    "[unit][spawner]") {
    TempDir dir;
    asio::io_context io;
    ProcessSpawner spawner(io);
    bool on_loop = GENERATE(true, false);
    spawner.set_spawn_on_loop(on_loop);
    constexpr int n = 100;
    std::map<int, std::vector<int>> pids;
    std::map<int, int> exits;
    std::map<int, int> codes;
    for (int i = 0; i < n; ++i) {
        std::string name = "t" + std::to_string(i);
        spawner.spawn(
            spec_of(dir, name, {{"sh", "-c", "echo " + name + "; exit " + std::to_string(i % 7)}}),
            [&, i](mpctl::common::Result<std::vector<int>> r) {
                REQUIRE(r.has_value());
                CHECK_FALSE(pids.contains(i));
                pids[i] = *r;
            },
            [&, i](size_t stage, ExitInfo info) {
                CHECK(stage == 0);
                CHECK(pids.contains(i));  // its start was heard first
                ++exits[i];
                codes[i] = info.exit_code.value_or(-1);
            });
    }
    run_until(io, [&] { return exits.size() == static_cast<size_t>(n); });
    REQUIRE(exits.size() == static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        CHECK(exits[i] == 1);
        CHECK(codes[i] == i % 7);
        CHECK(pids[i].size() == 1);
        CHECK(slurp(dir / ("t" + std::to_string(i) + ".out")) == "t" + std::to_string(i) + "\n");
    }
}

TEST_CASE(
    "a spawn that fails reports why on the loop, and a pipeline whose later stage fails starts nothing "
    "that outlives it",
    "[unit][spawner]") {
    TempDir dir;
    asio::io_context io;
    ProcessSpawner spawner(io);
    spawner.set_spawn_on_loop(GENERATE(true, false));
    std::optional<mpctl::common::Result<std::vector<int>>> missing;
    std::optional<mpctl::common::Result<std::vector<int>>> bad_cwd;
    int exits = 0;
    spawner.spawn(
        spec_of(dir, "missing", {{"no-such-command-here"}}),
        [&](mpctl::common::Result<std::vector<int>> r) { missing = std::move(r); },
        [&](size_t, ExitInfo) { ++exits; });
    SpawnSpec in_nowhere = spec_of(dir, "nowhere", {{"sleep", "600"}, {"true"}});
    in_nowhere.cwd = dir / "not-a-dir";
    spawner.spawn(
        std::move(in_nowhere), [&](mpctl::common::Result<std::vector<int>> r) { bad_cwd = std::move(r); },
        [&](size_t, ExitInfo) { ++exits; });
    run_until(io, [&] { return missing.has_value() && bad_cwd.has_value(); });
    REQUIRE(missing.has_value());
    REQUIRE_FALSE(missing->has_value());
    CHECK(missing->error().message() == "command not found: no-such-command-here");
    CHECK(mpctl::daemon::spawn_exit_code(missing->error()) == 127);
    REQUIRE(bad_cwd.has_value());
    REQUIRE_FALSE(bad_cwd->has_value());
    CHECK(bad_cwd->error().message().find("stage 0: cwd ") == 0);
    CHECK(exits == 0);  // a failed spawn reports no exits
}

TEST_CASE(
    "a spawner destroyed with spawns queued or unheard drops them: no callback runs, even when the "
    "loop runs on",
    "[unit][spawner]") {
    TempDir dir;
    asio::io_context io;
    int heard = 0;
    {
        ProcessSpawner spawner(io);
        spawner.set_spawn_on_loop(false);
        for (int i = 0; i < 20; ++i) {
            spawner.spawn(
                spec_of(dir, "q" + std::to_string(i), {{"true"}}),
                [&](mpctl::common::Result<std::vector<int>>) { ++heard; },
                [&](size_t, ExitInfo) { ++heard; });
        }
        // Let the thread finish one (it makes q1's files only after q0's outcome is posted) to a loop that
        // has not run.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (::access((dir / "q1.out").c_str(), F_OK) != 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    // What the thread posted before it stopped runs now, against a spawner that is gone (AddressSanitizer
    // would see it use freed memory): it must do nothing.
    io.poll();
    CHECK(heard == 0);
}

TEST_CASE(
    "the loop spawns by itself while spawns are quick, and hands them to the thread after three slow ones",
    "[unit][spawner]") {
    TempDir dir;
    asio::io_context io;
    ProcessSpawner spawner(io);
    int started = 0;
    int exited = 0;
    auto spawn_one = [&](const std::string& name) {
        spawner.spawn(
            spec_of(dir, name, {{"true"}}),
            [&](mpctl::common::Result<std::vector<int>> r) {
                CHECK(r.has_value());
                ++started;
            },
            [&](size_t, ExitInfo) { ++exited; });
    };
    // Quick enough (an hour is the bar): each outcome is heard before spawn() returns, on the loop.
    spawner.set_slow_spawn(std::chrono::hours(1));
    for (int i = 0; i < 5; ++i) {
        spawn_one("quick" + std::to_string(i));
        CHECK(started == i + 1);
    }
    CHECK_FALSE(spawner.offloading());
    // Every spawn is slow now: two in a row are not enough, the third sends the next ones to the thread.
    spawner.set_slow_spawn(std::chrono::microseconds(0));
    spawn_one("slow0");
    spawn_one("slow1");
    CHECK_FALSE(spawner.offloading());
    spawn_one("slow2");
    CHECK(started == 8);
    CHECK(spawner.offloading());
    spawn_one("through-thread");
    CHECK(started == 8);  // heard later, from the thread through the loop
    run_until(io, [&] { return started == 9 && exited == 9; });
    CHECK(started == 9);
    CHECK(exited == 9);
}
