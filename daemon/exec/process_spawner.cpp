#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <spdlog/spdlog.h>

#include <mpctl/common/pidfd_exit.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/exit_journal.hpp>
#include <mpctl/daemon/exec/input_fd_linux.hpp>
#include <mpctl/daemon/exec/process_spawner.hpp>
#include <mpctl/daemon/exec/spawn_linux.hpp>

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
// ("stdin /x: No such file") instead of surfacing from the child as an ambiguous ENOENT.
common::Result<UniqueFd> open_stream(const std::string& path, int flags, const char* what) {
    auto fd = common::open_cloexec(path, flags, 0644);
    if (!fd) {
        return common::sys_error(std::string(what) + " " + path, fd.error().err);
    }
    return std::move(*fd);
}

// Why the task cannot run in CWD, if it cannot.
std::optional<common::Error> cwd_problem(const std::string& cwd) {
    struct stat st {};
    if (::stat(cwd.c_str(), &st) != 0) {
        return common::Error{common::Errc::failed, errno, "cwd " + cwd};
    }
    if (!S_ISDIR(st.st_mode)) {
        return common::Error{common::Errc::failed, ENOTDIR, "cwd " + cwd};
    }
    if (::access(cwd.c_str(), X_OK) != 0) {
        return common::Error{common::Errc::failed, errno, "cwd " + cwd};
    }
    return std::nullopt;
}

// ERROR as the spawn of a task with STAGES stages reports it: a pipeline names the stage at fault.
std::unexpected<common::Error> stage_failure(common::Error error, size_t stage, size_t stages) {
    if (stages > 1) {
        error.context = "stage " + std::to_string(stage) + ": " + error.context;
    }
    return std::unexpected(std::move(error));
}

// An adopted process's pidfd in the epoll set: its pid with this bit, so that its exit, which must not be
// waited for, is never taken for a child's (a pid the supervisor has reaped may be ours again at once).
constexpr uint64_t k_adopted_tag = uint64_t{1} << 32;
// A stray child's (reap_strays): reaped and forgotten.
constexpr uint64_t k_stray_tag = uint64_t{1} << 33;

// Whether PID is a child of this process (exited or not): only a child can be waited for.
bool is_own_child(int pid) {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

// This process's children: what /proc/self/task/*/children lists (CONFIG_PROC_CHILDREN, which Debian's
// kernels have), read in microseconds; else every process whose parent is this one, a walk of all of /proc.
std::vector<int> own_children() {
    std::vector<int> pids;
    bool listed = false;
    if (DIR* tasks = ::opendir("/proc/self/task")) {
        while (dirent* t = ::readdir(tasks)) {
            if (t->d_name[0] == '.') {
                continue;
            }
            auto text = common::read_file(std::string("/proc/self/task/") + t->d_name + "/children");
            if (!text) {
                continue;
            }
            listed = true;
            std::istringstream in(*text);
            for (int pid = 0; in >> pid;) {
                pids.push_back(pid);
            }
        }
        ::closedir(tasks);
    }
    if (listed) {
        return pids;
    }
    const std::string self = std::to_string(::getpid());
    if (DIR* proc = ::opendir("/proc")) {
        while (dirent* e = ::readdir(proc)) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9') {
                continue;
            }
            int pid = std::atoi(e->d_name);
            auto fields = common::process_stat_fields(pid);
            if (fields && fields->size() > 1 && (*fields)[1] == self) {  // field 4, the parent
                pids.push_back(pid);
            }
        }
        ::closedir(proc);
    }
    return pids;
}

ExitInfo exit_info_of(int wait_status) {
    ExitInfo info;
    if (WIFEXITED(wait_status)) {
        info.exit_code = WEXITSTATUS(wait_status);
    } else if (WIFSIGNALED(wait_status)) {
        info.signal = WTERMSIG(wait_status);
    } else {
        info.unknown = true;
    }
    return info;
}

// A command that is nowhere (or empty: shown as '', where the shell's ": command not found" is easy to miss).
common::Error command_not_found(const std::string& name) {
    return common::Error{common::Errc::not_found, 0, "command not found: " + (name.empty() ? "''" : name)};
}

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

common::Result<std::string> find_executable(const std::string& file, const std::string& path,
                                            const std::string& cwd) {
    if (file.empty()) {
        return common::sys_error(file, ENOENT, common::Errc::not_found);  // as the shell: not found
    }
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
    return common::sys_error(file, first_error,
                             first_error == ENOENT ? common::Errc::not_found : common::Errc::failed);
}

ProcessSpawner::ProcessSpawner(asio::io_context& io) : io_(io), exits_(io) {
    // Every task without --stdin reads /dev/null: one descriptor serves them all.
    auto null_fd = common::open_cloexec("/dev/null", O_RDONLY);
    if (null_fd) {
        dev_null_ = std::move(*null_fd);
    }
    int epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    }
    exits_.assign(epfd);
    thread_ = std::thread([this] { run_jobs(); });
}

ProcessSpawner::~ProcessSpawner() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void ProcessSpawner::spawn(SpawnSpec spec, OnStarted on_started, OnExit on_exit) {
    auto job = std::make_unique<Job>();
    job->spec = std::move(spec);
    job->on_started = std::move(on_started);
    job->on_exit = std::move(on_exit);
    bool on_loop = spawn_on_loop_ && std::chrono::steady_clock::now() >= offload_until_;
    std::unique_lock lock(mutex_);
    bool was_idle = todo_.empty();
    if (on_loop && was_idle && !thread_busy_) {
        // The thread is idle and cannot start anything while the loop is here: the child stack and the
        // lookups are the loop's for this spawn.
        lock.unlock();
        spawn_here(std::move(job));
        return;
    }
    todo_.push_back(std::move(job));
    lock.unlock();
    if (was_idle) {
        wake_.notify_one();  // a busy thread looks at the queue again before it sleeps
    }
}

void ProcessSpawner::spawn_here(std::unique_ptr<Job> job) {
    auto began = std::chrono::steady_clock::now();
    start_children(*job);
    job->spec = SpawnSpec{};
    auto now = std::chrono::steady_clock::now();
    if (now - began <= slow_spawn_) {
        slow_streak_ = 0;
    } else if (++slow_streak_ >= k_slow_streak) {
        slow_streak_ = 0;
        offload_until_ = now + k_offload_for;
        spdlog::debug("spawns kept the loop waiting: the spawn thread starts tasks for the next {} s",
                      std::chrono::duration_cast<std::chrono::seconds>(k_offload_for).count());
    }
    receive(*job);
}

void ProcessSpawner::run_jobs() {
    // Signals are the loop's business; a clone here waits for the child's exec undisturbed.
    sigset_t all;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !todo_.empty(); });
        if (stopping_) {
            return;
        }
        std::unique_ptr<Job> job = std::move(todo_.front());
        todo_.pop_front();
        thread_busy_ = true;
        lock.unlock();
        start_children(*job);
        // The spec's descriptors (output files, pipe ends, a passed stdin) are the children's now: close
        // them here rather than on the loop.
        job->spec = SpawnSpec{};
        lock.lock();
        thread_busy_ = false;
        bool first = done_.empty();
        done_.push_back(std::move(job));
        if (first) {
            // One wake-up of the loop for however many spawns finish before it looks.
            // A spawner destroyed before the loop ran this leaves it nothing to do (a token, not `this`).
            asio::post(io_, [this, alive = std::weak_ptr<const char>(alive_)] {
                if (alive.lock()) {
                    receive_done();
                }
            });
        }
    }
}

void ProcessSpawner::receive_done() {
    std::vector<std::unique_ptr<Job>> jobs;
    {
        std::lock_guard lock(mutex_);
        jobs.swap(done_);
    }
    for (auto& job : jobs) {
        receive(*job);
    }
}

void ProcessSpawner::receive(Job& job) {
    std::vector<int> pids;
    pids.reserve(job.children.size());
    for (size_t i = 0; i < job.children.size(); ++i) {
        SpawnedChild& c = job.children[i];
        pids.push_back(c.pid);
        // After a failure the stages that did start were killed: they are still reaped, by their
        // pidfds, and reported to nobody.
        std::function<void(ExitInfo)> on_exit;
        if (!job.error) {
            on_exit = [cb = job.on_exit, i](ExitInfo info) {
                cb(i, info);
            };
        }
        watch(c.pid, std::move(c.pidfd), std::move(on_exit), c.start_ticks);
    }
    // What the scheduler throws must not keep the other spawns from being reported.
    try {
        if (job.error) {
            job.on_started(std::unexpected(std::move(*job.error)));
        } else {
            job.on_started(std::move(pids));
        }
    } catch (const std::exception& e) {
        spdlog::error("internal error after a spawn: {}", e.what());
    }
}

void ProcessSpawner::start_children(Job& job) {
    SpawnSpec& spec = job.spec;
    auto fail = [&job](std::unexpected<common::Error> e) {
        job.error = std::move(e.error());
    };
    const size_t n = spec.stages.size();
    if (n == 0 || std::any_of(spec.stages.begin(), spec.stages.end(),
                              [](const SpawnStage& st) { return st.argv.empty(); })) {
        job.error = common::Error{common::Errc::not_found, 0, "empty command"};
        return;
    }
    // Every stage's executable first: a pipeline with a typo starts nothing.
    std::vector<std::string> exes;
    exes.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        const std::string& name = spec.stages[i].argv.front();
        auto exe = lookup(name, spec.env->path(), spec.cwd);
        if (!exe) {
            // A relative PATH entry is searched in cwd: a missing cwd explains the miss better.
            if (auto bad_cwd = cwd_problem(spec.cwd)) {
                return fail(stage_failure(std::move(*bad_cwd), i, n));
            }
            if (exe.error().code == common::Errc::not_found) {
                return fail(stage_failure(command_not_found(name), i, n));
            }
            return fail(stage_failure(exe.error(), i, n));
        }
        exes.push_back(std::move(*exe));
    }

    if (!spec.stdin_fd && spec.stdin_path) {
        auto in = open_stream(*spec.stdin_path, O_RDONLY, "stdin");
        if (!in) {
            common::Error why = in.error();
            why.code = common::Errc::redirection;
            return fail(stage_failure(why, 0, n));
        }
        spec.stdin_fd = std::move(*in);
    } else if (!spec.stdin_fd && spec.input) {
        auto in = input_fd(*spec.input);
        if (!in) {
            common::Error why = in.error();
            why.context = "input: " + why.context;
            return fail(stage_failure(why, 0, n));
        }
        spec.stdin_fd = std::move(*in);
    }
    if (!spec.stdout_fd) {
        auto out = open_stream(spec.stdout_path, O_WRONLY | O_CREAT | O_TRUNC, "stdout");
        if (!out) {
            return fail(stage_failure(out.error(), 0, n));
        }
        spec.stdout_fd = std::move(*out);
    }
    for (size_t i = 0; i < n; ++i) {
        if (!spec.stages[i].stderr_fd) {
            auto err = open_stream(spec.stages[i].stderr_path, O_WRONLY | O_CREAT | O_TRUNC, "stderr");
            if (!err) {
                return fail(stage_failure(err.error(), i, n));
            }
            spec.stages[i].stderr_fd = std::move(*err);
        }
    }
    // The pipes between stages. The daemon keeps no end once the stages have theirs (they are closed when
    // this function returns), so each reader sees EOF when its writer is done.
    std::vector<common::UniqueFd> pipe_read(n);
    std::vector<common::UniqueFd> pipe_write(n);
    for (size_t i = 0; i + 1 < n; ++i) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            return fail(stage_failure(common::Error{common::Errc::failed, errno, "pipe"}, i, n));
        }
        pipe_read[i].reset(fds[0]);
        pipe_write[i].reset(fds[1]);
    }
    std::vector<ResourceLimit> limits;
    if (child_open_files_) {
        limits.push_back(*child_open_files_);  // first: a task's own nofile, set after it, wins
    }
    for (const auto& [resource, value] : spec.rlimits) {
        limits.push_back(ResourceLimit{resource, static_cast<rlim_t>(value), static_cast<rlim_t>(value)});
    }

    std::vector<int> pids;
    std::vector<SpawnedChild>& started = job.children;
    pids.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        const SpawnStage& stage = spec.stages[i];
        std::vector<char*> argv;
        argv.reserve(stage.argv.size() + 1);
        for (const auto& a : stage.argv) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        std::vector<char*> script_argv{const_cast<char*>("/bin/sh"), exes[i].data()};
        script_argv.insert(script_argv.end(), argv.begin() + 1, argv.end());

        ChildSetup setup;
        setup.path = exes[i].c_str();
        setup.argv = argv.data();
        setup.envp = spec.env->envp();
        setup.script_argv = script_argv.data();
        setup.cwd = spec.cwd.c_str();
        setup.stdin_fd =
            i == 0 ? (spec.stdin_fd ? spec.stdin_fd.get() : dev_null_.get()) : pipe_read[i - 1].get();
        setup.stdout_fd = i + 1 == n ? spec.stdout_fd.get() : pipe_write[i].get();
        setup.stderr_fd = stage.stderr_fd.get();
        setup.pgid = i == 0 ? 0 : pids.front();
        setup.nice = spec.nice;
        if (spec.umask) {
            setup.umask = static_cast<mode_t>(*spec.umask);
        }
        setup.limits = limits;
        setup.cgroup_procs_fd = spec.cgroup_procs_fd.get();
        setup.channel_fd = i == 0 ? spec.channel_fd.get() : -1;
        auto child = spawn_child(setup);
        if (!child) {
            // The stages already running would wait forever on a pipe nobody feeds: end them now (they are
            // still reaped, by their pidfds, and reported to nobody).
            if (!pids.empty()) {
                ::kill(-pids.front(), SIGKILL);
            }
            return fail(stage_failure(spawn_error(child.error(), stage.argv.front(), spec.cwd), i, n));
        }
        pids.push_back(child->pid);
        started.push_back(std::move(*child));
    }
}

common::Error ProcessSpawner::spawn_error(const common::Error& child, const std::string& command,
                                          const std::string& cwd) {
    // spawn_child's context is the step that failed in the child.
    const std::string& step = child.context;
    if (step == "exec" && child.err == ENOENT) {
        return command_not_found(command);
    }
    if (step == "chdir") {
        return common::Error{common::Errc::failed, child.err, "cwd " + cwd};
    }
    if (step == "exec") {
        return common::Error{common::Errc::failed, child.err, command};
    }
    return common::Error{common::Errc::failed, child.err, step};
}

void ProcessSpawner::watch(int pid, common::UniqueFd pidfd, std::function<void(ExitInfo)> on_exit,
                           uint64_t start_ticks) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(pid);
    if (::epoll_ctl(exits_.native_handle(), EPOLL_CTL_ADD, pidfd.get(), &ev) != 0) {
        // Unwatched, its exit would go unnoticed: do not leave an unsupervised process behind.
        spdlog::error("epoll_ctl for pid {}: {}", pid, std::strerror(errno));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (on_exit) {
            on_exit(ExitInfo{std::nullopt, SIGKILL, {}});
        }
        return;
    }
    children_.emplace(pid, Child{std::move(pidfd), std::move(on_exit), start_ticks});
    wait_for_exits();
}

common::Result<std::string> ProcessSpawner::lookup(const std::string& file, const std::string& path,
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

void ProcessSpawner::wait_for_exits() {
    if (waiting_ || (children_.empty() && adopted_watched_ == 0 && strays_.empty())) {
        return;
    }
    waiting_ = true;
    exits_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const std::error_code& ec) {
        waiting_ = false;
        if (ec == asio::error::operation_aborted) {
            return;
        }
        if (ec) {
            spdlog::warn("waiting for children: {}", ec.message());
        }
        epoll_event events[64];
        int n = 0;
        while ((n = ::epoll_wait(exits_.native_handle(), events, 64, 0)) > 0) {
            for (int i = 0; i < n; ++i) {
                uint64_t tag = events[i].data.u64;
                if ((tag & k_stray_tag) != 0) {
                    reap_stray(static_cast<int>(tag & ~k_stray_tag));
                } else if ((tag & k_adopted_tag) != 0) {
                    adopted_exited(static_cast<int>(tag & ~k_adopted_tag));
                } else {
                    reap(static_cast<int>(tag));
                }
            }
            if (n < 64) {
                break;
            }
        }
        wait_for_exits();
    });
}

void ProcessSpawner::reap(int pid) {
    auto it = children_.find(pid);
    if (it == children_.end()) {
        return;
    }
    int status = 0;
    // Only this pid, never -1: other parts of the daemon may own other children.
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == 0) {
        return;  // not exited yet (a spurious readiness); its pidfd stays in the set
    }
    ExitInfo info;
    if (r < 0) {
        spdlog::warn("waitpid {}: {}", pid, std::strerror(errno));
        info.exit_code = 255;
    } else {
        info = exit_info_of(status);
    }
    auto on_exit = std::move(it->second.on_exit);
    children_.erase(it);  // closing the pidfd also takes it out of the epoll set
    if (on_exit) {
        // What the scheduler throws must not stop the reaping of every other child.
        try {
            on_exit(info);
        } catch (const std::exception& e) {
            spdlog::error("internal error after the exit of pid {}: {}", pid, e.what());
        }
    }
}

void ProcessSpawner::signal_group(int pgid, int signo) {
    if (pgid <= 1) {
        return;  // never kill(-1) or kill(0) by accident
    }
    if (::kill(-pgid, signo) != 0 && errno != ESRCH) {
        spdlog::warn("kill(-{}, {}): {}", pgid, signo, std::strerror(errno));
    }
}

bool ProcessSpawner::group_alive(int pgid) {
    return pgid > 1 && ::kill(-pgid, 0) == 0;
}

uint64_t ProcessSpawner::start_ticks(int pid) const {
    auto it = children_.find(pid);
    return it == children_.end() ? 0 : it->second.start_ticks;
}

common::Result<void> ProcessSpawner::adopt(int pid, uint64_t start_ticks, const std::string& /*pool*/,
                                           OnExit on_exit) {
    const std::string process = "process " + std::to_string(pid);
    if (pid <= 1 || adopted_.contains(pid) || children_.contains(pid)) {
        return common::plain_error(process + " is watched already");
    }
    Adopted a;
    a.start_ticks = start_ticks;
    a.on_exit = [cb = std::move(on_exit)](ExitInfo info) {
        cb(0, std::move(info));
    };
    a.deadline = std::chrono::steady_clock::now() + adopted_exit_wait_;
    a.delay = k_first_look;
    auto watch_adopted = [&](common::UniqueFd pidfd) -> common::Result<void> {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = k_adopted_tag | static_cast<uint64_t>(pid);
        if (::epoll_ctl(exits_.native_handle(), EPOLL_CTL_ADD, pidfd.get(), &ev) != 0) {
            return common::sys_error("epoll_ctl for " + process);
        }
        a.pidfd = std::move(pidfd);
        adopted_.emplace(pid, std::move(a));
        ++adopted_watched_;
        wait_for_exits();
        return {};
    };
    // After an upgrade the process is our child still (the exec kept the pid and the links): it is reaped
    // here, ended or not, and waitid's status comes before any journal or PIDFD_GET_INFO. A child cannot
    // be reaped by anyone else, so its pid is not reused meanwhile; the start time tells the task's
    // process from a later child of ours.
    if (reaps_own_children_ && is_own_child(pid)) {
        auto pidfd = common::pidfd_open(pid);
        auto started = common::process_start_time(pid);
        if (pidfd && started && started_as_recorded(start_ticks, *started)) {
            a.own_child = true;
            return watch_adopted(std::move(*pidfd));
        }
    }
    // Ended while no daemon watched it: the supervisor journaled its status before it reaped it. Reported
    // from the loop, after adopt() has returned, as for a process that ends later.
    auto report_recorded = [&] {
        adopted_.emplace(pid, std::move(a));
        asio::post(io_, [this, pid, alive = std::weak_ptr<const char>(alive_)] {
            if (alive.lock()) {
                look_for_status(pid);
            }
        });
        return common::Result<void>{};
    };
    if (records_ && records_->wait_status(pid, start_ticks)) {
        return report_recorded();
    }
    auto pidfd = common::pidfd_open(pid);  // a zombie has one too: its status is still to be recorded
    if (!pidfd) {
        if (pidfd.error().err == ESRCH) {
            return common::plain_error(process + " is gone and no record of its exit was kept");
        }
        return std::unexpected(pidfd.error());
    }
    auto started = common::process_start_time(pid);
    if (!started) {
        // Reaped between the two calls: its record was written before the reap, if anyone wrote one.
        if (records_ && records_->wait_status(pid, start_ticks)) {
            return report_recorded();
        }
        return common::plain_error(process + " is gone and no record of its exit was kept");
    }
    if (!started_as_recorded(start_ticks, *started)) {
        return common::plain_error("pid " + std::to_string(pid) + " is another process now (started at " +
                                   std::to_string(*started) + " ticks since boot, the task's at " +
                                   std::to_string(start_ticks) + ")");
    }
    return watch_adopted(std::move(*pidfd));
}

void ProcessSpawner::adoptions_done() {
    adopting_ = false;
    clear_records_if_done();
}

void ProcessSpawner::adopted_exited(int pid) {
    auto it = adopted_.find(pid);
    if (it == adopted_.end()) {
        return;
    }
    // Out of the set (a pidfd stays readable), but kept: PIDFD_GET_INFO needs it once the process is reaped.
    ::epoll_ctl(exits_.native_handle(), EPOLL_CTL_DEL, it->second.pidfd.get(), nullptr);
    --adopted_watched_;
    it->second.deadline = std::chrono::steady_clock::now() + adopted_exit_wait_;
    look_for_status(pid);
}

void ProcessSpawner::look_for_status(int pid) {
    auto it = adopted_.find(pid);
    if (it == adopted_.end()) {
        return;
    }
    Adopted& a = it->second;
    if (a.own_child) {
        if (auto info = reap_own(pid)) {
            adopted_ended(pid, std::move(*info));
            return;
        }
    }
    std::optional<int> status;
    if (!a.own_child && records_) {
        status = records_->wait_status(pid, a.start_ticks);
    }
    if (!status && a.pidfd) {
        status = common::pidfd_exit_status(a.pidfd.get());
    }
    if (status) {
        adopted_ended(pid, exit_info_of(*status));
        return;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= a.deadline) {
        spdlog::warn("adopted pid {} ended, and no record says how", pid);
        ExitInfo unknown;
        unknown.unknown = true;
        adopted_ended(pid, std::move(unknown));
        return;
    }
    auto left = std::chrono::ceil<std::chrono::milliseconds>(a.deadline - now);
    auto delay = std::min(a.delay, left);
    a.delay *= 2;
    if (!a.retry) {
        a.retry = std::make_unique<asio::steady_timer>(io_);
    }
    a.retry->expires_after(delay);
    a.retry->async_wait([this, pid](const std::error_code& ec) {
        if (!ec) {  // a spawner destroyed meanwhile destroyed the timer, which aborts the wait
            look_for_status(pid);
        }
    });
}

void ProcessSpawner::adopted_ended(int pid, ExitInfo info) {
    auto it = adopted_.find(pid);
    auto on_exit = std::move(it->second.on_exit);
    adopted_.erase(it);
    try {
        on_exit(std::move(info));
    } catch (const std::exception& e) {
        spdlog::error("internal error after the exit of adopted pid {}: {}", pid, e.what());
    }
    clear_records_if_done();
}

void ProcessSpawner::clear_records_if_done() {
    // Every record was for a process of the daemon that died; once none is watched or looked for, nothing
    // will ask for one again, and the file must not grow over a long life.
    if (records_ && !adopting_ && adopted_.empty()) {
        records_->clear();
    }
}

}  // namespace mpctl::daemon

namespace mpctl::daemon {

std::optional<ExitInfo> ProcessSpawner::reap_own(int pid) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG) != 0) {
        spdlog::warn("waitid {}: {}", pid, std::strerror(errno));
        ExitInfo unknown;
        unknown.unknown = true;
        return unknown;
    }
    if (info.si_pid != pid) {
        return std::nullopt;  // not ended yet (a spurious readiness): looked at again
    }
    return exit_info_of(common::wait_status_of(info));
}

void ProcessSpawner::reap_strays() {
    size_t found = 0;
    for (int pid : own_children()) {
        if (children_.contains(pid) || adopted_.contains(pid) || strays_.contains(pid)) {
            continue;
        }
        // Only the last image's: a child this one is spawning (on the thread, not yet in children_) is not
        // a stray. The spawner was made after the exec.
        auto started = common::process_start_time(pid);
        if (!started || *started >= made_at_ticks_) {
            continue;
        }
        auto pidfd = common::pidfd_open(pid);
        if (!pidfd) {
            continue;  // gone meanwhile, and reaped by whom could
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = k_stray_tag | static_cast<uint64_t>(pid);
        if (::epoll_ctl(exits_.native_handle(), EPOLL_CTL_ADD, pidfd->get(), &ev) == 0) {
            strays_.emplace(pid, std::move(*pidfd));
            ++found;
        }
    }
    if (found > 0) {
        spdlog::info(
            "upgrade: {} children of the last image that are no task of this one are reaped as they end",
            found);
    }
    wait_for_exits();
}

void ProcessSpawner::reap_stray(int pid) {
    if (::waitpid(pid, nullptr, WNOHANG) == 0) {
        return;  // not ended yet
    }
    strays_.erase(pid);  // closing the pidfd takes it out of the epoll set
}

bool ProcessSpawner::idle() {
    std::lock_guard lock(mutex_);
    return todo_.empty() && !thread_busy_ && done_.empty();
}

}  // namespace mpctl::daemon
