#pragma once

#include <fcntl.h>
#include <unistd.h>
// Small helpers shared by the e2e tests (header-only, so the CMake glob of tests/e2e/test_*.cpp needs no
// change): files as events, processes whose output lands in files while they run, process-group checks
// through /proc, and a guard that stops a daemon mpctl autostarted.

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <signal.h>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/common/pidfd_exit.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/common/time.hpp>

#include "daemon_fixture.hpp"
#include "process.hpp"
#include "temp_dir.hpp"

namespace mpctl::test::e2e {

using nlohmann::json;
using namespace std::chrono_literals;

inline std::string str(int64_t v) {
    return std::to_string(v);
}

inline bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// The whole file, or what could be read of it: read(2) rather than an ifstream, because reading
// /proc/PID/stat of a process that exits meanwhile fails with ESRCH and libstdc++'s filebuf throws on that.
inline std::string slurp(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return out;
    }
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

inline void touch(const std::string& path) {
    std::ofstream out(path, std::ios::app);
}

// Waits (generously) until PATH exists; true if it does.
inline bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout = 60s) {
    return eventually([&] { return exists(path); }, timeout);
}

// A shell fragment that blocks until PATH exists: how a task waits for the test's go-ahead.
inline std::string sh_wait_for(const std::string& path) {
    return "while [ ! -e '" + path + "' ]; do sleep 0.01; done";
}

// "2024-05-01T12:34:56.789Z": RFC 3339, UTC.
inline bool is_rfc3339_utc(const json& v) {
    static const std::regex re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$)");
    return v.is_string() && std::regex_match(v.get<std::string>(), re);
}

// Lines of TEXT without their '\n'.
inline std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        out.push_back(line);
    }
    return out;
}

// Ids of the status objects in OBJECTS, in order.
inline std::vector<int64_t> ids_of(const std::vector<json>& objects) {
    std::vector<int64_t> ids;
    for (const auto& o : objects) {
        ids.push_back(o.at("id").get<int64_t>());
    }
    return ids;
}

// ARGV in the background with its stdout and stderr going to files, so a test can watch what it writes
// while it runs (BackgroundProcess only collects captured output at the end).
inline std::unique_ptr<BackgroundProcess> spawn_to_files(const std::vector<std::string>& argv,
                                                         const ProcessOptions& options,
                                                         const std::string& out_path,
                                                         const std::string& err_path) {
    std::vector<std::string> wrapped{
        "/bin/sh", "-c",     "out=$1; err=$2; shift 2; exec \"$@\" >\"$out\" 2>\"$err\"",
        "sh",      out_path, err_path};
    wrapped.insert(wrapped.end(), argv.begin(), argv.end());
    return std::make_unique<BackgroundProcess>(wrapped, options, false);
}

// mpctl ARGS against daemon D, in the background, output to files.
inline std::unique_ptr<BackgroundProcess> mpctl_in_background(const DaemonFixture& d,
                                                              const std::vector<std::string>& args,
                                                              const std::string& out_path,
                                                              const std::string& err_path,
                                                              ProcessOptions options = {}) {
    std::vector<std::string> argv{mpctl_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return spawn_to_files(argv, d.client_options(std::move(options)), out_path, err_path);
}

// /proc/PID/stat's fields after the command name (common::process_stat_fields): 0 is the state, 1 the
// parent, 2 the process group, 19 the start time. None once the process is gone.
inline std::vector<std::string> proc_stat_fields(pid_t pid) {
    return mpctl::common::process_stat_fields(pid).value_or(std::vector<std::string>{});
}

inline bool proc_state(pid_t pid, char& state, pid_t& pgrp) {
    auto fields = proc_stat_fields(pid);
    if (fields.size() < 3) {
        return false;
    }
    state = fields[0][0];
    pgrp = static_cast<pid_t>(std::atol(fields[2].c_str()));
    return true;
}

// PID's parent (0 once it is gone).
inline pid_t parent_of(pid_t pid) {
    auto fields = proc_stat_fields(pid);
    return fields.size() < 2 ? 0 : static_cast<pid_t>(std::atol(fields[1].c_str()));
}

// Live (not zombie) processes whose process group is PGID.
inline std::vector<pid_t> live_group_members(pid_t pgid) {
    std::vector<pid_t> members;
    DIR* dir = ::opendir("/proc");
    if (dir == nullptr) {
        return members;
    }
    while (dirent* e = ::readdir(dir)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end != '\0') {
            continue;
        }
        char state = 0;
        pid_t group = 0;
        if (proc_state(static_cast<pid_t>(pid), state, group) && group == pgid && state != 'Z' &&
            state != 'X') {
            members.push_back(static_cast<pid_t>(pid));
        }
    }
    ::closedir(dir);
    return members;
}

// True once something accepts connections on the Unix socket PATH.
inline bool socket_answers(const std::string& path) {
    try {
        RpcConnection probe(path);
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

inline bool process_alive(pid_t pid) {
    char state = 0;
    pid_t group = 0;
    return pid > 0 && proc_state(pid, state, group) && state != 'Z' && state != 'X';
}

// Waits (generously) for PID, a task orphaned by a daemon the test killed with -9, to end, and reaps it:
// DaemonFixture makes the test the subreaper of its daemons' orphans. A daemon restarted after the kill
// re-adopts the tasks whose processes are still there (test_readoption.cpp); a test about the ones it
// cannot reaps them first; and an adopted one learns how its process ended once it is reaped.
inline void reap_orphan(pid_t pid) {
    REQUIRE(eventually(
        [&] {
            int status = 0;
            pid_t r = ::waitpid(pid, &status, WNOHANG);
            // ECHILD: not the test's (a supervised daemon's orphans go to its supervisor): gone is enough.
            return r == pid || (r < 0 && errno == ECHILD && ::kill(pid, 0) != 0 && errno == ESRCH);
        },
        60s));
}

// A daemon under its supervising parent (mpctld --supervise, issue 20): the fixture's pid is the
// supervisor's, and serving_pid() the daemon's.
inline DaemonOptions supervised(int workers = 2) {
    DaemonOptions o;
    o.workers = workers;
    o.extra_args = {"--supervise"};
    return o;
}

// `mpctl daemon status --json`, or null while no daemon answers (one just killed, say).
inline json daemon_status(const DaemonFixture& d) {
    auto r = d.mpctl({"--json", "daemon", "status"});
    json j = json::parse(r.out, nullptr, false);
    return r.exit_code == 0 && j.is_object() ? j : json();
}

// The serving daemon's own pid, as `daemon status` tells it (under --supervise: the supervisor's child).
inline pid_t serving_pid(const DaemonFixture& d) {
    json s = daemon_status(d);
    REQUIRE(s.is_object());
    return s["pid"].get<pid_t>();
}

// Waits (generously) for a daemon other than OLD to answer (the supervisor's next one); its status.
inline json wait_for_new_daemon(const DaemonFixture& d, pid_t old) {
    json s;
    bool up = eventually([&] {
        s = daemon_status(d);
        return s.is_object() && s["pid"].get<pid_t>() != old;
    });
    INFO(d.log());
    REQUIRE(up);
    return s;
}

// Milliseconds from FROM to TO, two times as a status shows them.
inline int64_t ms_between(const json& from, const json& to) {
    auto from_ms = mpctl::common::parse_rfc3339_ms(from.get<std::string>());
    auto to_ms = mpctl::common::parse_rfc3339_ms(to.get<std::string>());
    REQUIRE(from_ms);
    REQUIRE(to_ms);
    return *to_ms - *from_ms;
}

// Whether this kernel tells the holder of a pidfd how its process ended, once whoever is its parent has
// reaped it (PIDFD_GET_INFO, Linux 6.15): how a daemon without a supervising parent learns the outcome of
// a task it re-adopted. Probed on a child of our own.
inline bool kernel_reports_exits() {
    pid_t child = ::fork();
    if (child == 0) {
        ::_exit(7);
    }
    auto pidfd = mpctl::common::pidfd_open(child);
    ::waitpid(child, nullptr, 0);
    return pidfd && mpctl::common::pidfd_exit_status(pidfd->get()) == (7 << 8);
}

// Kills the process groups it was given when it goes away: tasks orphaned by a daemon killed with -9
// must not outlive the test.
class GroupReaper {
  public:
    GroupReaper() = default;
    GroupReaper(const GroupReaper&) = delete;
    GroupReaper& operator=(const GroupReaper&) = delete;
    ~GroupReaper() {
        for (pid_t g : groups_) {
            if (g > 1) {
                ::kill(-g, SIGKILL);
            }
        }
    }
    void add(pid_t pgid) { groups_.push_back(pgid); }

  private:
    std::vector<pid_t> groups_;
};

// Stops the mpctld that holds STATE_DIR/mpctld.lock (an autostarted, daemonized one the test does not
// own as a child), even when the test fails: SIGTERM, then SIGKILL. Only a process whose command line
// names mpctld is signalled.
class DaemonGuard {
  public:
    explicit DaemonGuard(std::string state_dir) : state_dir_(std::move(state_dir)) {}
    DaemonGuard(const DaemonGuard&) = delete;
    DaemonGuard& operator=(const DaemonGuard&) = delete;
    ~DaemonGuard() { stop(); }

    // The pid recorded in the lock file, if that process is an mpctld that is alive.
    [[nodiscard]] pid_t pid() const {
        std::string text = slurp(state_dir_ + "/mpctld.lock");
        pid_t pid = static_cast<pid_t>(std::atol(text.c_str()));
        if (pid <= 1 || !process_alive(pid)) {
            return -1;
        }
        std::string cmdline = slurp("/proc/" + std::to_string(pid) + "/cmdline");
        return cmdline.find("mpctld") != std::string::npos ? pid : -1;
    }

    void stop() const {
        pid_t p = pid();
        if (p <= 0) {
            return;
        }
        ::kill(p, SIGTERM);
        if (!eventually([&] { return !process_alive(p); }, 30s)) {
            ::kill(p, SIGKILL);
            (void)eventually([&] { return !process_alive(p); }, 10s);
        }
    }

  private:
    std::string state_dir_;
};

// The environment of an mpctl that talks to SOCKET/STATE_DIR with autostart allowed (or not).
inline ProcessOptions autostart_options(const std::string& socket, const std::string& state_dir) {
    ProcessOptions o;
    o.env_set["MPCTL_SOCKET"] = socket;
    o.env_set["MPCTL_STATE_DIR"] = state_dir;
    o.env_set["NO_COLOR"] = "1";
    o.env_unset.push_back("MPCTL_NO_AUTOSTART");
    return o;
}

// A process to lease locks, semaphores and segments to (`--owner-pid`), alive until the test kills it or
// ends.
inline std::unique_ptr<BackgroundProcess> owner() {
    return std::make_unique<BackgroundProcess>(std::vector<std::string>{"sleep", "3600"}, ProcessOptions{},
                                               false);
}

inline std::string pid_of(const std::unique_ptr<BackgroundProcess>& p) {
    return std::to_string(p->pid());
}

}  // namespace mpctl::test::e2e
