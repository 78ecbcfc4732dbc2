#include "process.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace mpctl::test {

namespace {

std::vector<std::string> build_env(const ProcessOptions& o) {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string kv(*e);
        auto eq = kv.find('=');
        if (eq != std::string::npos) {
            env[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
    }
    for (const auto& k : o.env_unset) {
        env.erase(k);
    }
    for (const auto& [k, v] : o.env_set) {
        env[k] = v;
    }
    std::vector<std::string> out;
    for (const auto& [k, v] : env) {
        out.push_back(k + "=" + v);
    }
    return out;
}

struct Pipe {
    int r = -1, w = -1;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe2");
        }
        r = fds[0];
        w = fds[1];
    }
};

pid_t spawn(const std::vector<std::string>& argv, const ProcessOptions& o, int in_fd, int out_fd,
            int err_fd) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    if (!o.cwd.empty()) {
        posix_spawn_file_actions_addchdir_np(&fa, o.cwd.c_str());
    }
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t empty;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&attr, &empty);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGTERM);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> args;
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    auto env = build_env(o);
    std::vector<char*> envp;
    for (auto& e : env) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, argv.at(0).c_str(), &fa, &attr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        throw std::runtime_error("cannot run " + argv.at(0) + ": " + std::strerror(rc));
    }
    return pid;
}

int decode_status(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

// Reads OUT and ERR (and writes IN_DATA) until both reach EOF or the deadline passes.
bool pump(int in_fd, const std::string& in_data, int& out_fd, int& err_fd, ProcessResult& r,
          std::chrono::steady_clock::time_point deadline) {
    size_t written = 0;
    if (in_fd >= 0 && in_data.empty()) {
        ::close(in_fd);
        in_fd = -1;
    }
    if (in_fd >= 0) {
        ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
    }
    char buf[65536];
    while (out_fd >= 0 || err_fd >= 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            if (in_fd >= 0) {
                ::close(in_fd);
            }
            return false;
        }
        pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
        int n = ::poll(fds, 3, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
        if (n < 0 && errno != EINTR) {
            break;
        }
        for (int i = 0; i < 2; ++i) {
            int& fd = i == 0 ? out_fd : err_fd;
            if (fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                ssize_t got = ::read(fd, buf, sizeof buf);
                if (got > 0) {
                    (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(got));
                } else if (got == 0 || errno != EINTR) {
                    ::close(fd);
                    fd = -1;
                }
            }
        }
        if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            ssize_t w = ::write(in_fd, in_data.data() + written, in_data.size() - written);
            if (w > 0) {
                written += static_cast<size_t>(w);
            }
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                written = in_data.size();
            }
            if (written >= in_data.size()) {
                ::close(in_fd);
                in_fd = -1;
            }
        }
    }
    if (in_fd >= 0) {
        ::close(in_fd);
    }
    return true;
}

bool wait_pid(pid_t pid, int& status, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return true;
        }
        if (r < 0 && errno != EINTR) {
            return true;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        struct timespec ts {
            0, 2'000'000
        };
        ::nanosleep(&ts, nullptr);
    }
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
    Pipe in, out, err;
    pid_t pid = spawn(argv, options, in.r, out.w, err.w);
    ::close(in.r);
    ::close(out.w);
    ::close(err.w);
    ProcessResult r;
    auto deadline = std::chrono::steady_clock::now() + options.timeout;
    if (!pump(in.w, options.stdin_data, out.r, err.r, r, deadline)) {
        r.timed_out = true;
        ::kill(pid, SIGKILL);
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
    for (int fd : {out.r, err.r}) {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    int status = 0;
    if (!wait_pid(pid, status, deadline)) {
        r.timed_out = true;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    }
    r.exit_code = decode_status(status);
    return r;
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv, const ProcessOptions& options,
                                     bool capture) {
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (capture) {
        Pipe out, err;
        pid_ = spawn(argv, options, null_fd, out.w, err.w);
        ::close(out.w);
        ::close(err.w);
        out_fd_ = out.r;
        err_fd_ = err.r;
    } else if (!options.output_file.empty()) {
        int log_fd = ::open(options.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        pid_ = spawn(argv, options, null_fd, log_fd, log_fd);
        ::close(log_fd);
    } else {
        pid_ = spawn(argv, options, null_fd, null_fd, null_fd);
    }
    ::close(null_fd);
}

BackgroundProcess::~BackgroundProcess() {
    if (!reaped_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    if (out_fd_ >= 0) {
        ::close(out_fd_);
    }
    if (err_fd_ >= 0) {
        ::close(err_fd_);
    }
}

void BackgroundProcess::signal(int signo) const {
    if (!reaped_ && pid_ > 0) {
        ::kill(pid_, signo);
    }
}

bool BackgroundProcess::running() {
    if (reaped_) {
        return false;
    }
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        reaped_ = true;
        result_.exit_code = decode_status(status);
        return false;
    }
    return true;
}

std::optional<ProcessResult> BackgroundProcess::wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    if (out_fd_ >= 0 || err_fd_ >= 0) {
        if (!pump(-1, "", out_fd_, err_fd_, result_, deadline)) {
            return std::nullopt;
        }
    }
    if (!reaped_) {
        int status = 0;
        if (!wait_pid(pid_, status, deadline)) {
            return std::nullopt;
        }
        reaped_ = true;
        result_.exit_code = decode_status(status);
    }
    return result_;
}

}  // namespace mpctl::test
