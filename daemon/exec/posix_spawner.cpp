#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/posix_spawner.hpp>

namespace mpctl::daemon {

namespace {

using common::UniqueFd;

bool is_executable_file(const std::string& path, int& err) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        err = errno;
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        err = EACCES;
        return false;
    }
    if (::access(path.c_str(), X_OK) != 0) {
        err = errno;
        return false;
    }
    return true;
}

// Opens one of the child's standard streams in the daemon, so that a failure is reported precisely
// ("stdin /x: No such file") instead of surfacing from posix_spawn as an ambiguous ENOENT.
std::expected<UniqueFd, SpawnError> open_stream(const std::string& path, int flags, const char* what) {
    auto fd = common::open_cloexec(path, flags, 0644);
    if (!fd) {
        return std::unexpected(
            SpawnError{126, std::string(what) + " " + path + ": " + std::strerror(fd.error().err)});
    }
    return std::move(*fd);
}

// Why the task cannot run in CWD, if it cannot.
std::optional<SpawnError> cwd_problem(const std::string& cwd) {
    struct stat st {};
    if (::stat(cwd.c_str(), &st) != 0) {
        return SpawnError{126, "cwd " + cwd + ": " + std::strerror(errno)};
    }
    if (!S_ISDIR(st.st_mode)) {
        return SpawnError{126, "cwd " + cwd + ": Not a directory"};
    }
    if (::access(cwd.c_str(), X_OK) != 0) {
        return SpawnError{126, "cwd " + cwd + ": " + std::strerror(errno)};
    }
    return std::nullopt;
}

// RAII for the posix_spawn attribute objects.
struct SpawnAttrs {
    posix_spawnattr_t attr{};
    posix_spawn_file_actions_t actions{};
    SpawnAttrs() {
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_init(&actions);
    }
    ~SpawnAttrs() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
    SpawnAttrs(const SpawnAttrs&) = delete;
    SpawnAttrs& operator=(const SpawnAttrs&) = delete;
};

}  // namespace

EnvBlock::EnvBlock(std::vector<std::string> entries) : entries_(std::move(entries)), path_("/bin:/usr/bin") {
    envp_.reserve(entries_.size() + 1);
    for (auto& e : entries_) {
        envp_.push_back(e.data());
        if (e.starts_with("PATH=")) {
            path_ = e.substr(5);
        }
    }
    envp_.push_back(nullptr);
}

std::expected<std::string, int> find_executable(const std::string& file, const std::string& path,
                                                const std::string& cwd) {
    if (file.find('/') != std::string::npos) {
        return file;  // exec resolves a relative path after the chdir to cwd, as a shell would
    }
    int first_error = ENOENT;
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find(':', start);
        if (end == std::string::npos) {
            end = path.size();
        }
        std::string dir = path.substr(start, end - start);
        if (dir.empty()) {
            dir = cwd;  // an empty PATH entry means the current directory
        } else if (dir.front() != '/') {
            dir = cwd + "/" + dir;
        }
        std::string candidate = dir + "/" + file;
        int err = 0;
        if (is_executable_file(candidate, err)) {
            return candidate;
        }
        if (err == EACCES) {
            first_error = EACCES;  // found but not executable: keep looking, report EACCES if nothing else
        }
        start = end + 1;
    }
    return std::unexpected(first_error);
}

PosixSpawner::PosixSpawner(asio::io_context& io) : io_(io) {
    // Every task without --stdin reads /dev/null: one descriptor serves them all.
    auto null_fd = common::open_cloexec("/dev/null", O_RDONLY);
    if (null_fd) {
        dev_null_ = std::move(*null_fd);
    }
}

PosixSpawner::~PosixSpawner() = default;

std::expected<int, SpawnError> PosixSpawner::spawn(SpawnSpec spec, OnExit on_exit) {
    if (spec.argv.empty()) {
        return std::unexpected(SpawnError{127, "empty command"});
    }
    auto exe = lookup(spec.argv.front(), spec.env->path(), spec.cwd);
    if (!exe) {
        if (auto bad_cwd = cwd_problem(spec.cwd)) {
            return std::unexpected(*bad_cwd);
        }
        if (exe.error() == ENOENT) {
            return std::unexpected(SpawnError{127, "command not found: " + spec.argv.front()});
        }
        return std::unexpected(SpawnError{126, spec.argv.front() + ": " + std::strerror(exe.error())});
    }

    common::UniqueFd stdin_file;
    if (spec.stdin_path) {
        auto in = open_stream(*spec.stdin_path, O_RDONLY, "stdin");
        if (!in) {
            return std::unexpected(in.error());
        }
        stdin_file = std::move(*in);
    }
    int stdin_fd = stdin_file ? stdin_file.get() : dev_null_.get();
    if (!spec.stdout_fd) {
        auto out = open_stream(spec.stdout_path, O_WRONLY | O_CREAT | O_TRUNC, "stdout");
        if (!out) {
            return std::unexpected(out.error());
        }
        spec.stdout_fd = std::move(*out);
    }
    if (!spec.stderr_fd) {
        auto err = open_stream(spec.stderr_path, O_WRONLY | O_CREAT | O_TRUNC, "stderr");
        if (!err) {
            return std::unexpected(err.error());
        }
        spec.stderr_fd = std::move(*err);
    }

    SpawnAttrs sa;
    // Start from a clean slate whatever the daemon's own signal state: nothing blocked, and default
    // dispositions for SIGPIPE (an ignored SIGPIPE survives exec and breaks `yes | head`) and for every
    // signal the daemon handles or may have inherited as ignored.
    sigset_t empty;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&sa.attr, &empty);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGTSTP, SIGTTIN,
                    SIGTTOU, SIGALRM, SIGXFSZ}) {
        sigaddset(&defaults, sig);
    }
    posix_spawnattr_setsigdefault(&sa.attr, &defaults);
    posix_spawnattr_setpgroup(&sa.attr, 0);  // its own process group, so signals reach the whole tree
    posix_spawnattr_setflags(&sa.attr,
                             POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

    posix_spawn_file_actions_adddup2(&sa.actions, stdin_fd, 0);
    posix_spawn_file_actions_adddup2(&sa.actions, spec.stdout_fd.get(), 1);
    posix_spawn_file_actions_adddup2(&sa.actions, spec.stderr_fd.get(), 2);
    posix_spawn_file_actions_addchdir_np(&sa.actions, spec.cwd.c_str());
    // The backstop: whatever the daemon holds (sockets Asio opened without CLOEXEC, fds inherited from
    // whoever started the daemon) never reaches a task.
    posix_spawn_file_actions_addclosefrom_np(&sa.actions, 3);

    std::vector<char*> argv;
    argv.reserve(spec.argv.size() + 2);
    for (const auto& a : spec.argv) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    char* const* envp = spec.env->envp();

    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, exe->c_str(), &sa.actions, &sa.attr, argv.data(), envp);
    if (rc == ENOEXEC) {
        // A script without "#!": run it with /bin/sh, as execvp and shells do.
        std::vector<char*> sh_argv{const_cast<char*>("/bin/sh"), const_cast<char*>(exe->c_str())};
        sh_argv.insert(sh_argv.end(), argv.begin() + 1, argv.end());
        rc = ::posix_spawn(&pid, "/bin/sh", &sa.actions, &sa.attr, sh_argv.data(), envp);
    }
    if (rc != 0) {
        // A failed chdir in the child looks like a missing executable: tell them apart here, where it is
        // cheap (only on failure).
        if (auto bad_cwd = cwd_problem(spec.cwd)) {
            return std::unexpected(*bad_cwd);
        }
        int code = rc == ENOENT ? 127 : 126;
        std::string what = rc == ENOENT ? "command not found: " + spec.argv.front()
                                        : spec.argv.front() + ": " + std::strerror(rc);
        return std::unexpected(SpawnError{code, what});
    }

    auto pidfd = common::pidfd_open(pid);
    if (!pidfd) {
        // Without a pidfd the exit cannot be watched; do not leave an unsupervised process behind.
        spdlog::error("{}", pidfd.error().message());
        ::kill(-pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        return std::unexpected(SpawnError{126, pidfd.error().message()});
    }
    auto child = std::make_shared<Child>(io_);
    child->pid = pid;
    child->pidfd.assign(pidfd->release());
    child->on_exit = std::move(on_exit);
    children_.emplace(pid, child);
    watch(std::move(child));
    return pid;
}

std::expected<std::string, int> PosixSpawner::lookup(const std::string& file, const std::string& path,
                                                     const std::string& cwd) {
    if (file.find('/') != std::string::npos) {
        return file;
    }
    // A PATH search is a few stat(2)s; a task queue runs the same commands over and over. Like a shell's
    // hash table, but entries expire within a second, so a newly installed command is found soon.
    auto now = std::chrono::steady_clock::now();
    std::string key = file + '\0' + path + '\0' + cwd;
    auto it = lookups_.find(key);
    if (it != lookups_.end() && it->second.expires > now && ::access(it->second.exe.c_str(), X_OK) == 0) {
        return it->second.exe;
    }
    auto exe = find_executable(file, path, cwd);
    if (exe) {
        if (lookups_.size() > 1024) {
            lookups_.clear();
        }
        lookups_[key] = Lookup{*exe, now + std::chrono::seconds(1)};
    }
    return exe;
}

void PosixSpawner::watch(std::shared_ptr<Child> child) {
    auto* raw = child.get();
    raw->pidfd.async_wait(asio::posix::stream_descriptor::wait_read,
                          [this, child = std::move(child)](const std::error_code& ec) {
                              if (ec == asio::error::operation_aborted) {
                                  return;
                              }
                              if (ec) {
                                  spdlog::warn("pidfd wait for {}: {}", child->pid, ec.message());
                              }
                              reap(child);
                          });
}

void PosixSpawner::reap(const std::shared_ptr<Child>& child) {
    int status = 0;
    // Only this pid, never -1: other parts of the daemon may own other children.
    pid_t r = ::waitpid(child->pid, &status, WNOHANG);
    if (r == 0) {
        watch(child);  // spurious wakeup: not exited yet
        return;
    }
    ExitInfo info;
    if (r < 0) {
        spdlog::warn("waitpid {}: {}", child->pid, std::strerror(errno));
        info.exit_code = 255;
    } else if (WIFEXITED(status)) {
        info.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        info.signal = WTERMSIG(status);
    }
    children_.erase(child->pid);
    auto on_exit = std::move(child->on_exit);
    if (on_exit) {
        on_exit(info);
    }
}

void PosixSpawner::signal_group(int pgid, int signo) {
    if (pgid <= 1) {
        return;  // never kill(-1) or kill(0) by accident
    }
    if (::kill(-pgid, signo) != 0 && errno != ESRCH) {
        spdlog::warn("kill(-{}, {}): {}", pgid, signo, std::strerror(errno));
    }
}

bool PosixSpawner::group_alive(int pgid) {
    return pgid > 1 && ::kill(-pgid, 0) == 0;
}

}  // namespace mpctl::daemon
