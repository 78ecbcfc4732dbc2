#pragma once
// What the map tests (test_map*.cpp) share: inputs, and ways to watch a map's tasks from the outside.

#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

namespace mpctl::test::e2e::map {

inline std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) {
        out += l + "\n";
    }
    return out;
}

inline ProcessOptions with_stdin(std::string data, std::string cwd = {}) {
    ProcessOptions o;
    o.stdin_data = std::move(data);
    o.cwd = std::move(cwd);
    return o;
}

// The map's tasks that are still pending or running, seen by the daemon.
inline size_t unfinished_tasks(const DaemonFixture& d) {
    return d.mpctl_ndjson({"list", "--state", "pending"}).size() +
           d.mpctl_ndjson({"list", "--state", "running"}).size();
}

inline std::string shell_quote_for_test(const std::string& word) {
    std::string out = "'";
    for (char c : word) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

// The names of the daemon's pools (a map's own pool is there while it runs).
inline std::vector<std::string> pool_names(const DaemonFixture& d) {
    std::vector<std::string> names;
    for (const auto& p : d.mpctl_ndjson({"pool", "list", "--json"})) {
        names.push_back(p["name"].get<std::string>());
    }
    return names;
}

// Starts `mpctl map ARGS` (output to T/out and T/err) and waits until RUNNING of its tasks run and PENDING
// wait: the state in which the tests below stop the map or the daemon.
inline std::unique_ptr<BackgroundProcess> start_map_and_wait(const DaemonFixture& d, const TempDir& t,
                                                             const std::vector<std::string>& args,
                                                             size_t running, size_t pending,
                                                             ProcessOptions options = {}) {
    auto bg = mpctl_in_background(d, args, t / "out", t / "err", std::move(options));
    REQUIRE(eventually(
        [&] {
            return d.mpctl_ndjson({"list", "--state", "running"}).size() == running &&
                   d.mpctl_ndjson({"list", "--state", "pending"}).size() == pending;
        },
        60s));
    return bg;
}

// `mpctl map -j2 -- sleep ::: PREFIX1 ... PREFIX10`: sleeps whose command lines no other process has.
inline std::vector<std::string> sleep_map_args(const std::string& prefix) {
    std::vector<std::string> args{"map", "-j2", "--", "sleep", ":::"};
    for (int i = 1; i <= 10; ++i) {
        args.push_back(prefix + std::to_string(i));
    }
    return args;
}

// Processes whose command line matches PATTERN (pgrep -f).
inline bool processes_matching(const std::string& pattern) {
    auto r = run_process({"pgrep", "-f", pattern});
    return r.exit_code == 0;
}

}  // namespace mpctl::test::e2e::map
