#pragma once
// Running a real program from a test: argv, environment, stdin bytes in; exit code, stdout and stderr
// out. Never waits forever: a program still running at the deadline is killed and reported.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <time.h>
#include <vector>

namespace mpctl::test {

struct ProcessResult {
    int exit_code = -1;  // 128+N if killed by signal N
    std::string out;
    std::string err;
    bool timed_out = false;
};

struct ProcessOptions {
    std::map<std::string, std::string> env_set;  // added to (or replacing in) the test's environment
    std::vector<std::string> env_unset;
    std::string stdin_data;
    std::string cwd;  // empty: the test's cwd
    std::chrono::milliseconds timeout{std::chrono::seconds(120)};
    std::string output_file;  // BackgroundProcess without capture: stdout and stderr appended here
};

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// A process left running (a daemon, a long mpctl run); killed with SIGKILL on destruction if still alive.
class BackgroundProcess {
  public:
    BackgroundProcess(const std::vector<std::string>& argv, const ProcessOptions& options = {},
                      bool capture = true);
    ~BackgroundProcess();
    BackgroundProcess(const BackgroundProcess&) = delete;
    BackgroundProcess& operator=(const BackgroundProcess&) = delete;

    [[nodiscard]] pid_t pid() const { return pid_; }
    void signal(int signo) const;
    // Waits for the exit (up to TIMEOUT); the result holds what it wrote. nullopt on timeout.
    std::optional<ProcessResult> wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
    [[nodiscard]] bool running();

  private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
    int err_fd_ = -1;
    bool reaped_ = false;
    ProcessResult result_;
};

// Polls PRED every few milliseconds until it is true or TIMEOUT passes; returns its last value.
// For waiting on an outside event (a file, a state change) with a generous deadline, never a fixed sleep.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) {
            return true;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            return pred();
        }
        struct timespec ts {
            0, 5'000'000
        };
        ::nanosleep(&ts, nullptr);
    }
}

}  // namespace mpctl::test
