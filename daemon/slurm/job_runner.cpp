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
    if (argc < 4 || std::strcmp(argv[2], "--") != 0) {
        std::fprintf(stderr, "usage: mpctl-slurm-job STATUS_DIR -- COMMAND [ARG]...\n");
        return 2;
    }
    const std::string dir = argv[1];
    const char* job = std::getenv("SLURM_JOB_ID");
    if (job == nullptr || *job == '\0') {
        std::fprintf(stderr, "mpctl-slurm-job: not in a Slurm job (no SLURM_JOB_ID)\n");
        return 2;
    }
    JobStatus status;
    status.started_ms = common::now_unix_ms();
    const int64_t id = std::strtoll(job, nullptr, 10);
    // Running now, not pending: from here a signal reaches the command (the daemon passes cancels on
    // rather than cancelling the job outright).
    std::string started = started_path(dir, id);
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
        ::execvp(argv[3], argv + 3);
        int e = errno;
        std::fprintf(stderr, "%s: %s\n", e == ENOENT ? "command not found" : std::strerror(e), argv[3]);
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
    std::string path = status_path(dir, id);
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
