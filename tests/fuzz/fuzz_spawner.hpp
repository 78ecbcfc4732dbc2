#pragma once
// FuzzSpawner: the Spawner of fuzz_params's daemon. Nothing is really started or signalled: a "process"
// runs until the harness ends it, or ends at once while the harness settles the daemon (settling(true)),
// and every exit reaches the scheduler on the loop, as a real reaped child's does. What it prints and how
// it ends are read from its command, so that fuzzed specs reach every outcome: it prints its arguments,
// "false" exits 1, anything else 0, a group sent SIGTERM or SIGKILL dies of it, and a command under
// /nonexistent is not found.

#include <csignal>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unistd.h>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <mpctl/daemon/exec/spawner.hpp>

namespace mpctl::fuzz {

class FuzzSpawner final : public daemon::Spawner {
  public:
    explicit FuzzSpawner(asio::io_context& io) : io_(io) {}

    // As the daemon's spawner does, the outcome arrives on the loop later: requests that come meanwhile
    // meet tasks that are starting.
    void spawn(daemon::SpawnSpec spec, OnStarted on_started, OnExit on_exit) override {
        auto pids = start(std::move(spec), std::move(on_exit));
        std::optional<int> pgid;
        if (pids) {
            pgid = pids->front();
        }
        asio::post(io_, [on_started = std::move(on_started), pids = std::move(pids)]() mutable {
            on_started(std::move(pids));
        });
        if (pgid && settling_) {
            end(*pgid);  // its exit is posted after its start
        }
    }

    common::Result<std::vector<int>> start(daemon::SpawnSpec spec, OnExit on_exit) {
        for (size_t i = 0; i < spec.stages.size(); ++i) {
            const std::string& command = spec.stages[i].argv.front();
            if (command.starts_with("/nonexistent")) {
                std::string prefix = spec.stages.size() > 1 ? "stage " + std::to_string(i) + ": " : "";
                return std::unexpected(
                    common::Error{common::Errc::not_found, 0, prefix + "command not found: " + command});
            }
        }
        print(spec);
        Process p;
        for (size_t i = 0; i < spec.stages.size(); ++i) {
            p.pids.push_back(next_pid_++);
        }
        p.exit_code = spec.stages.back().argv.front() == "false" ? 1 : 0;
        p.on_exit = std::move(on_exit);
        std::vector<int> pids = p.pids;
        int pgid = pids.front();
        live_.emplace(pgid, std::move(p));
        return pids;
    }

    void signal_group(int pgid, int signo) override {
        auto it = live_.find(pgid);
        if (it == live_.end() || (signo != SIGTERM && signo != SIGKILL)) {
            return;  // other signals are caught or ignored by these processes
        }
        it->second.killed_by = signo;
        end(pgid);
    }

    bool group_alive(int) override { return false; }

    // While settling, every process ends as soon as it starts.
    void settling(bool on) { settling_ = on; }
    // Ends every process that runs now.
    void end_all() {
        for (const auto& [pgid, p] : live_) {
            end(pgid);
        }
    }
    [[nodiscard]] size_t live() const { return live_.size(); }

  private:
    // What a process prints, so that task.logs has output to stream, tail and cut: the last stage its
    // arguments on stdout, one a line, and each stage its command on its own stderr.
    static void print(const daemon::SpawnSpec& spec) {
        const auto& argv = spec.stages.back().argv;
        std::string out;
        for (size_t i = 1; i < argv.size(); ++i) {
            out += argv[i] + "\n";
        }
        write_all(spec.stdout_fd, out);
        for (const auto& stage : spec.stages) {
            write_all(stage.stderr_fd, stage.argv.front() + "\n");
        }
    }

    static void write_all(const common::UniqueFd& fd, std::string_view data) {
        while (fd && !data.empty()) {
            ssize_t n = ::write(fd.get(), data.data(), data.size());
            if (n <= 0) {
                return;
            }
            data.remove_prefix(static_cast<size_t>(n));
        }
    }

    struct Process {
        std::vector<int> pids;
        OnExit on_exit;
        int exit_code = 0;
        int killed_by = 0;
        bool ending = false;
    };

    // Its stages exit on the loop, later: the scheduler must not hear of an exit inside its own call.
    void end(int pgid) {
        Process& p = live_.at(pgid);
        if (p.ending) {
            return;
        }
        p.ending = true;
        asio::post(io_, [this, pgid] {
            auto it = live_.find(pgid);
            if (it == live_.end()) {
                return;
            }
            Process p = std::move(it->second);
            live_.erase(it);
            daemon::ExitInfo info;
            if (p.killed_by != 0) {
                info.signal = p.killed_by;
            } else {
                info.exit_code = p.exit_code;
            }
            for (size_t stage = 0; stage < p.pids.size(); ++stage) {
                p.on_exit(stage, info);
            }
        });
    }

    asio::io_context& io_;
    std::map<int, Process> live_;  // by process group
    int next_pid_ = 1000;
    bool settling_ = false;
};

}  // namespace mpctl::fuzz
