#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <mpctl/common/time.hpp>
#include <mpctl/daemon/exec/pipefail.hpp>
#include <mpctl/daemon/slurm/job_files.hpp>
#include <mpctl/daemon/slurm/job_runner.hpp>

namespace mpctl::daemon::slurm {

namespace {

// What the runner passes on to its command: Slurm sends it to the job step, or to the batch step alone.
constexpr int k_passed[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCONT, SIGQUIT};

// The child, or minus a pipeline's group: where a passed signal goes.
volatile sig_atomic_t g_child = 0;

void forward(int signo) {
    if (g_child != 0) {
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

// Stage I's process: the passed signals back to their defaults and mask, its descriptors in place, then
// its command. IN and OUT: pipe ends for fds 0 and 1 (-1: the runner's own, or OUT_PATH for fd 1). GROUP:
// the process group to join (0: a new one of its own), -1 the runner's.
[[noreturn]] void exec_stage(char** words, int in, int out, const char* out_path, const char* err_path,
                             const sigset_t& before, pid_t group) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s : k_passed) {
        ::sigaction(s, &dfl, nullptr);
    }
    ::sigprocmask(SIG_SETMASK, &before, nullptr);
    if (group >= 0) {
        ::setpgid(0, group);  // a pipeline's stages are one group, which a passed signal reaches whole
    }
    for (auto [fd, target] : {std::pair{in, 0}, std::pair{out, 1}}) {
        if (fd >= 0 && ::dup2(fd, target) < 0) {
            std::fprintf(stderr, "mpctl-slurm-job: dup2: %s\n", std::strerror(errno));
            ::_exit(126);
        }
    }
    // An element's or a stage's files (a plain job's are Slurm's --output and --error): made and emptied by
    // the daemon, appended to as a task's process writes to the descriptors it was given.
    for (auto [path, target] : {std::pair{err_path, 2}, std::pair{out < 0 ? out_path : nullptr, 1}}) {
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
    ::execvp(words[0], words);
    int e = errno;
    std::fprintf(stderr, "%s: %s\n", e == ENOENT ? "command not found" : std::strerror(e), words[0]);
    ::_exit(e == ENOENT ? 127 : 126);
}

}  // namespace

int run_job(int argc, char** argv) {
    auto usage = [] {
        std::fprintf(stderr,
                     "usage: mpctl-slurm-job STATUS_DIR [--element] [--stdout PATH] [--stderr PATH] "
                     "[--stage N STDERR]... -- COMMAND [ARG]...\n");
        return 2;
    };
    if (argc < 4) {
        return usage();
    }
    const std::string dir = argv[1];
    bool element = false;
    const char* out_path = nullptr;
    const char* err_path = nullptr;
    struct Stage {
        int words = 0;
        const char* stderr_path = nullptr;
        pid_t pid = 0;
        int status = 0;
    };
    std::vector<Stage> stages;
    int cmd = 2;
    for (; cmd < argc && std::strcmp(argv[cmd], "--") != 0; ++cmd) {
        if (std::strcmp(argv[cmd], "--element") == 0) {
            element = true;
        } else if (std::strcmp(argv[cmd], "--stdout") == 0 && cmd + 1 < argc) {
            out_path = argv[++cmd];
        } else if (std::strcmp(argv[cmd], "--stderr") == 0 && cmd + 1 < argc) {
            err_path = argv[++cmd];
        } else if (std::strcmp(argv[cmd], "--stage") == 0 && cmd + 2 < argc && std::atoi(argv[cmd + 1]) > 0) {
            stages.push_back({std::atoi(argv[cmd + 1]), argv[cmd + 2]});
            cmd += 2;
        } else {
            return usage();
        }
    }
    if (++cmd >= argc) {
        return usage();
    }
    if (stages.empty()) {
        stages.push_back({argc - cmd, err_path});
    }
    // Each stage's words, as execvp takes them (null-ended); together they are all of ARGV after `--`.
    std::vector<std::vector<char*>> words;
    {
        int at = cmd;
        for (auto& st : stages) {
            if (at + st.words > argc) {
                return usage();
            }
            words.emplace_back(argv + at, argv + at + st.words);
            words.back().push_back(nullptr);
            at += st.words;
        }
        if (at != argc) {
            return usage();
        }
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
    // Slurm signals the whole job step (scancel, --time): the children get their own, and what reaches only
    // this process (scancel --batch) is passed on. Blocked from before the first fork until the group is
    // known, so that a signal in between is held, not lost.
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
    // One command is the child; a pipeline's stages are a process group of their own (the first's).
    bool pipeline = stages.size() > 1;
    pid_t group = 0;
    int in = -1;
    for (size_t i = 0; i < stages.size(); ++i) {
        int p[2] = {-1, -1};
        if (i + 1 < stages.size() && ::pipe2(p, O_CLOEXEC) != 0) {
            std::fprintf(stderr, "mpctl-slurm-job: pipe: %s\n", std::strerror(errno));
            return 126;  // the stages started so far see EOF or EPIPE and end with the job
        }
        pid_t pid = ::fork();
        if (pid < 0) {
            std::fprintf(stderr, "mpctl-slurm-job: fork: %s\n", std::strerror(errno));
            return 126;
        }
        if (pid == 0) {
            exec_stage(words[i].data(), in, p[1], out_path, stages[i].stderr_path, before,
                       pipeline ? group : -1);
        }
        if (pipeline) {
            ::setpgid(pid, group);  // here too: no signal may find the group not made yet
        }
        if (group == 0) {
            group = pid;
        }
        stages[i].pid = pid;
        if (in >= 0) {
            ::close(in);
        }
        if (p[1] >= 0) {
            ::close(p[1]);
        }
        in = p[0];
    }
    g_child = pipeline ? -group : group;
    ::sigprocmask(SIG_SETMASK, &before, nullptr);  // what came meanwhile is passed on now
    for (size_t left = stages.size(); left > 0;) {
        int ws = 0;
        pid_t pid = ::waitpid(-1, &ws, 0);
        if (pid < 0) {
            if (errno == EINTR) {
                continue;
            }
            std::fprintf(stderr, "mpctl-slurm-job: waitpid: %s\n", std::strerror(errno));
            return 126;
        }
        for (auto& st : stages) {
            if (st.pid == pid) {
                st.status = ws;
                --left;
            }
        }
    }
    g_child = 0;
    auto ended = [](int ws) {
        JobStatus::Stage e;
        if (WIFSIGNALED(ws)) {
            e.signal = WTERMSIG(ws);
        } else {
            e.exit_code = WEXITSTATUS(ws);
        }
        return e;
    };
    // The whole ends as bash's pipefail says (exec/pipefail.hpp), so that Slurm's afterok agrees with mpctl.
    JobStatus::Stage whole{0, std::nullopt};
    for (size_t i = stages.size(); i-- > 0;) {
        JobStatus::Stage e = ended(stages[i].status);
        if (!stage_ok(i, stages.size(), e.exit_code, e.signal, words[i][0])) {
            whole = e;
            break;
        }
    }
    if (pipeline) {
        for (const auto& st : stages) {
            status.stages.push_back(ended(st.status));
        }
    }
    status.exit_code = whole.exit_code;
    status.signal = whole.signal;
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
