#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <mpctl/common/time.hpp>
#include <mpctl/daemon/slurm/job_files.hpp>
#include <mpctl/daemon/slurm/job_runner.hpp>

namespace mpctl::daemon::slurm {

namespace {

volatile sig_atomic_t g_child = 0;

void forward(int signo) {
    if (g_child > 0) {
        ::kill(g_child, signo);
    }
}

bool write_all(int fd, const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
        ssize_t n = ::write(fd, s.data() + done, s.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        done += static_cast<size_t>(n);
    }
    return true;
}

}  // namespace

int run_job(int argc, char** argv) {
    auto usage = [] {
        std::fprintf(stderr,
                     "usage: mpctl-slurm-job STATUS_DIR [--element] [--stdout PATH] [--stderr PATH] -- "
                     "COMMAND [ARG]...\n");
        return 2;
    };
    if (argc < 4) {
        return usage();
    }
    const std::string dir = argv[1];
    bool element = false;
    const char* out_path = nullptr;
    const char* err_path = nullptr;
    int cmd = 2;
    for (; cmd < argc && std::strcmp(argv[cmd], "--") != 0; ++cmd) {
        if (std::strcmp(argv[cmd], "--element") == 0) {
            element = true;
        } else if (std::strcmp(argv[cmd], "--stdout") == 0 && cmd + 1 < argc) {
            out_path = argv[++cmd];
        } else if (std::strcmp(argv[cmd], "--stderr") == 0 && cmd + 1 < argc) {
            err_path = argv[++cmd];
        } else {
            return usage();
        }
    }
    if (++cmd >= argc) {
        return usage();
    }
    // The job's key as Slurm's commands name it (job_files.hpp): an element's own SLURM_JOB_ID is given
    // only when it starts, so the daemon knows it by its array and index.
    auto var = [](const char* name) {
        const char* v = std::getenv(name);
        return std::string(v != nullptr ? v : "");
    };
    std::string key =
        element ? var("SLURM_ARRAY_JOB_ID") + "_" + var("SLURM_ARRAY_TASK_ID") : var("SLURM_JOB_ID");
    if (!is_job_key(key)) {
        std::fprintf(stderr, "mpctl-slurm-job: not in a Slurm job%s (no job id in %s: \"%s\")\n",
                     element ? " array" : "",
                     element ? "SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID" : "SLURM_JOB_ID", key.c_str());
        return 2;
    }
    JobStatus status;
    status.started_ms = common::now_unix_ms();
    // Running now, not pending: from here a signal reaches the command (the daemon passes cancels on
    // rather than cancelling the job outright).
    std::string started = started_path(dir, key);
    if (int fd = ::open(started.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); fd >= 0) {
        ::close(fd);
    }
    // Slurm signals the whole job step (scancel, --time): the child gets its own, and what reaches only
    // this process (scancel --batch) is passed on. Blocked from before the fork until the child's pid is
    // known, so that a signal in between is held, not lost.
    constexpr int k_passed[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCONT, SIGQUIT};
    sigset_t passed, before;
    sigemptyset(&passed);
    for (int s : k_passed) {
        sigaddset(&passed, s);
    }
    ::sigprocmask(SIG_BLOCK, &passed, &before);
    struct sigaction sa {};
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    for (int s : k_passed) {
        ::sigaction(s, &sa, nullptr);
    }
    pid_t child = ::fork();
    if (child < 0) {
        std::fprintf(stderr, "mpctl-slurm-job: fork: %s\n", std::strerror(errno));
        return 126;
    }
    if (child == 0) {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int s : k_passed) {
            ::sigaction(s, &dfl, nullptr);
        }
        ::sigprocmask(SIG_SETMASK, &before, nullptr);
        // An element's files (a plain job's are Slurm's --output and --error): made and emptied by the
        // daemon, appended to as a task's process writes to the descriptors it was given.
        for (auto [path, target] : {std::pair{err_path, 2}, std::pair{out_path, 1}}) {
            if (path == nullptr) {
                continue;
            }
            int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0 || ::dup2(fd, target) < 0) {
                std::fprintf(stderr, "mpctl-slurm-job: %s: %s\n", path, std::strerror(errno));
                ::_exit(126);
            }
            ::close(fd);
        }
        ::execvp(argv[cmd], argv + cmd);
        int e = errno;
        std::fprintf(stderr, "%s: %s\n", e == ENOENT ? "command not found" : std::strerror(e), argv[cmd]);
        ::_exit(e == ENOENT ? 127 : 126);
    }
    g_child = child;
    ::sigprocmask(SIG_SETMASK, &before, nullptr);  // what came meanwhile is passed on now
    int ws = 0;
    while (::waitpid(child, &ws, 0) < 0) {
        if (errno != EINTR) {
            std::fprintf(stderr, "mpctl-slurm-job: waitpid: %s\n", std::strerror(errno));
            return 126;
        }
    }
    g_child = 0;
    if (WIFSIGNALED(ws)) {
        status.signal = WTERMSIG(ws);
    } else {
        status.exit_code = WEXITSTATUS(ws);
    }
    status.ended_ms = common::now_unix_ms();
    std::string path = status_path(dir, key);
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || !write_all(fd, format_status(status)) || ::fsync(fd) != 0 || ::close(fd) != 0 ||
        ::rename(tmp.c_str(), path.c_str()) != 0) {
        std::fprintf(stderr, "mpctl-slurm-job: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    }
    if (status.signal) {
        std::signal(*status.signal, SIG_DFL);
        ::raise(*status.signal);
        return 128 + *status.signal;
    }
    return *status.exit_code;
}

}  // namespace mpctl::daemon::slurm
