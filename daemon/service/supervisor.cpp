#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/signals.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/exit_journal.hpp>
#include <mpctl/daemon/service/logging.hpp>
#include <mpctl/daemon/service/supervisor.hpp>

namespace mpctl::daemon {

void Supervised::ready() {
    if (link_) {
        (void)::send(link_.get(), "R", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
}

namespace {

std::string describe_end(int status) {
    if (WIFEXITED(status)) {
        return "exited with code " + std::to_string(WEXITSTATUS(status));
    }
    return "was killed by " + common::signal_name(WTERMSIG(status)) +
           (WCOREDUMP(status) ? " (core dumped)" : "");
}

class Supervisor {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr auto k_first_backoff = std::chrono::milliseconds(100);
    static constexpr auto k_max_backoff = std::chrono::seconds(5);
    static constexpr auto k_crash_window = std::chrono::seconds(60);
    static constexpr size_t k_crash_limit = 5;  // crashes within the window that make the supervisor give up

    Supervisor(SupervisorOptions options, const sigset_t& saved_mask, common::UniqueFd signals)
        : options_(std::move(options)), saved_mask_(saved_mask), signals_(std::move(signals)) {}

    // Forks a daemon: its link to the supervisor in the child, nullopt in the supervisor.
    common::Result<std::optional<Supervised>> start_daemon();
    // The loop, until the supervisor is done (its exit code) or a daemon it restarted returns from it.
    Supervision run();

  private:
    void on_signal(int signo);
    void reap();
    void daemon_ended(int status);
    void crashed(pid_t pid, int status);
    [[nodiscard]] bool daemon_has_died();
    void record(pid_t pid, int status);
    void read_link();
    void reattach_log() const;
    void release_log() const;

    // A line of the supervisor's own, to the current log.
    template <class... Args>
    void log(spdlog::level::level_enum level, spdlog::format_string_t<Args...> format, Args&&... args) {
        reattach_log();
        spdlog::log(level, format, std::forward<Args>(args)...);
        release_log();
    }

    SupervisorOptions options_;
    sigset_t saved_mask_;
    common::UniqueFd signals_;  // signalfd of SIGCHLD, SIGTERM, SIGINT, SIGHUP
    const pid_t self_ = ::getpid();
    pid_t daemon_ = 0;       // the current daemon; 0 while there is none
    common::UniqueFd link_;  // its socket to the supervisor (Supervised::link), non-blocking here
    bool daemon_ready_ = false;
    bool ever_ready_ = false;  // some daemon served: the start the user waited for succeeded
    bool daemons_died_ = false;
    bool stop_requested_ = false;
    int started_ = 0;  // daemons forked so far
    std::deque<Clock::time_point> crashes_;
    std::optional<Clock::time_point> restart_at_;
    std::optional<int> exit_code_;
    common::UniqueFd exits_;  // the exit journal, opened at the first record
};

common::Result<std::optional<Supervised>> Supervisor::start_daemon() {
    int fds[2];
    // Packets: a notification is one message, as systemd's datagrams are; a daemon that dies ends it.
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
        return common::sys_error("socketpair");
    }
    common::UniqueFd own_end(fds[0]);
    common::UniqueFd daemon_end(fds[1]);
    if (::fcntl(own_end.get(), F_SETFL, O_NONBLOCK) != 0) {
        return common::sys_error("fcntl O_NONBLOCK");
    }
    reattach_log();  // the daemon's descriptor 2 is the current log, not one rotated away
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) {
        return common::sys_error("fork");
    }
    if (pid == 0) {
        own_end.reset();
        signals_.reset();
        link_.reset();
        exits_.reset();
        ::sigprocmask(SIG_SETMASK, &saved_mask_, nullptr);
        // A supervisor killed with SIGKILL takes its daemon along, or a second one could start beside it.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != self_) {
            return common::plain_error("the supervisor exited during start-up");
        }
        return Supervised(self_, started_, std::move(daemon_end));
    }
    release_log();
    daemon_ = pid;
    link_ = std::move(own_end);
    daemon_ready_ = false;
    ++started_;
    return std::nullopt;
}

Supervision Supervisor::run() {
    release_log();
    while (!exit_code_) {
        if (restart_at_ && Clock::now() >= *restart_at_) {
            restart_at_.reset();
            auto child = start_daemon();
            if (!child) {
                log(spdlog::level::err, "supervisor: cannot start the daemon again: {}; giving up",
                    child.error().message());
                return Supervision{1, {}};
            }
            if (*child) {
                return Supervision{std::nullopt, std::move(**child)};
            }
            continue;
        }
        int timeout_ms = -1;
        if (restart_at_) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(*restart_at_ - Clock::now());
            timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
        }
        pollfd fds[2] = {{signals_.get(), POLLIN, 0}, {link_.get(), POLLIN, 0}};  // -1: not polled
        if (::poll(fds, 2, timeout_ms) < 0) {
            if (errno == EINTR) {
                continue;
            }
            log(spdlog::level::err, "supervisor: poll: {}", std::strerror(errno));
            return Supervision{1, {}};
        }
        if (fds[1].revents != 0) {
            read_link();
        }
        signalfd_siginfo info{};
        while (::read(signals_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
            on_signal(static_cast<int>(info.ssi_signo));
        }
    }
    return Supervision{exit_code_, {}};
}

void Supervisor::on_signal(int signo) {
    if (signo == SIGCHLD) {
        reap();
        return;
    }
    if (signo != SIGHUP) {
        stop_requested_ = true;
    }
    if (daemon_ > 0) {
        ::kill(daemon_, signo);
    } else if (signo != SIGHUP && !exit_code_) {
        log(spdlog::level::info, "supervisor: {} while the daemon is down: not starting it again",
            common::signal_name(signo));
        exit_code_ = 0;
    }
}

void Supervisor::reap() {
    for (;;) {
        // WNOWAIT: a task must be recorded while it is still a zombie, its pid not yet free for another.
        siginfo_t info{};
        if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
            if (errno == EINTR) {
                continue;
            }
            return;  // ECHILD: no child at all
        }
        pid_t pid = info.si_pid;
        if (pid == 0) {
            return;
        }
        int status = common::wait_status_of(info);
        // Every orphan, not only the leaders of the tasks' process groups: a pipeline's later stages share
        // their first stage's group. A task's own descendants are recorded too (a few bytes each, and only
        // while no daemon runs), since nothing here tells them from a stage.
        if (pid != daemon_ && daemon_has_died()) {
            record(pid, status);
        }
        ::waitpid(pid, nullptr, WNOHANG);
        if (pid == daemon_) {
            daemon_ended(status);
        }
    }
}

// An orphan is a task of ours only once a daemon has died; before that, it is a task's descendant that
// left its parent, and recording it would only grow the journal of a daemon that never crashed. The kernel
// hands a dying daemon's children over before it makes the daemon a zombie, so an orphan met before the
// daemon's own exit in one pass finds the daemon already waitable.
bool Supervisor::daemon_has_died() {
    if (daemons_died_) {
        return true;
    }
    siginfo_t info{};
    return daemon_ > 0 &&
           ::waitid(P_PID, static_cast<id_t>(daemon_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == daemon_;
}

void Supervisor::record(pid_t pid, int status) {
    auto start = common::process_start_time(pid);
    if (!start) {
        log(spdlog::level::warn,
            "supervisor: task process {} {}, but its start time is unreadable ({}): not recorded", pid,
            describe_end(status), start.error().message());
        return;
    }
    if (!exits_) {
        auto opened = open_exit_journal_for_append(exit_journal_path(options_.state_dir));
        if (!opened) {
            log(spdlog::level::err, "supervisor: {}: the exit of task process {} is not recorded",
                opened.error().message(), pid);
            return;
        }
        exits_ = std::move(*opened);
    }
    if (auto r = append_exit_record(exits_.get(), ExitRecord{pid, *start, status}); !r) {
        log(spdlog::level::err, "supervisor: recording the exit of task process {}: {}", pid,
            r.error().message());
    }
}

void Supervisor::read_link() {
    char packet[4096];
    for (;;) {
        ssize_t n = ::recv(link_.get(), packet, sizeof packet, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            link_.reset();  // the daemon is gone (its exit is reaped next)
            return;
        }
        if (n < 0) {
            return;
        }
        if (packet[0] == 'R') {
            daemon_ready_ = true;
            ever_ready_ = true;
        } else if (packet[0] == 'N') {
            systemd_notify(std::string(packet + 1, static_cast<size_t>(n - 1)));
        }
    }
}

void Supervisor::daemon_ended(int status) {
    if (link_) {
        read_link();  // a daemon that said it was ready just before it died was ready
    }
    link_.reset();
    const pid_t pid = daemon_;
    daemon_ = 0;
    daemons_died_ = true;
    const bool exited = WIFEXITED(status);
    const int code = exited ? WEXITSTATUS(status) : 1;
    if (exited && code == 0) {
        exit_code_ = 0;  // a stop
    } else if (stop_requested_) {
        log(spdlog::level::err, "supervisor: the daemon (pid {}) {} while stopping", pid,
            describe_end(status));
        exit_code_ = code;
    } else if (exited && !daemon_ready_) {
        // A failed start (the daemon said why): starting it again would fail the same way.
        if (started_ > 1) {
            log(spdlog::level::err, "supervisor: the daemon (pid {}) {} before it was ready; giving up", pid,
                describe_end(status));
        }
        exit_code_ = code;
    } else if (!ever_ready_) {
        // The first daemon died before it served: whoever started mpctld has been told it failed.
        log(spdlog::level::err, "supervisor: the daemon (pid {}) {} before it was ready; giving up", pid,
            describe_end(status));
        exit_code_ = 1;
    } else {
        crashed(pid, status);
    }
}

void Supervisor::crashed(pid_t pid, int status) {
    auto now = Clock::now();
    crashes_.push_back(now);
    while (now - crashes_.front() > k_crash_window) {
        crashes_.pop_front();
    }
    const auto window_s = std::chrono::duration_cast<std::chrono::seconds>(k_crash_window).count();
    if (crashes_.size() >= k_crash_limit) {
        log(spdlog::level::err, "supervisor: the daemon (pid {}) {}: {} crashes within {} s, giving up", pid,
            describe_end(status), crashes_.size(), window_s);
        exit_code_ = 1;
        return;
    }
    auto delay = std::min<Clock::duration>(k_max_backoff, k_first_backoff * (1 << (crashes_.size() - 1)));
    log(spdlog::level::warn,
        "supervisor: the daemon (pid {}) {}; starting it again in {:.1f} s (crash {} within {} s)", pid,
        describe_end(status), std::chrono::duration<double>(delay).count(), crashes_.size(), window_s);
    systemd_notify("STATUS=the daemon (pid " + std::to_string(pid) + ") " + describe_end(status) +
                   "; starting it again (its tasks run on)");
    restart_at_ = now + delay;
}

void Supervisor::reattach_log() const {
    if (options_.log_path.empty()) {
        return;
    }
    // The daemon rotates the log: the supervisor's descriptor 2 would stay on a file renamed away.
    int fd = ::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0 && fd != STDERR_FILENO) {
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
    }
}

// Between its own lines the supervisor's descriptor 2 is /dev/null: the daemon rotates the log, and a
// descriptor left on it would keep a file renamed away, and later deleted, open as long as it runs.
void Supervisor::release_log() const {
    if (options_.log_path.empty()) {
        return;
    }
    int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && fd != STDERR_FILENO) {
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
    }
}

}  // namespace

common::Result<Supervision> supervise(const SupervisorOptions& options, Readiness& readiness) {
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        return common::sys_error("prctl PR_SET_CHILD_SUBREAPER");
    }
    // Blocked before the first fork, so that no SIGCHLD is missed; the daemons get the mask back.
    sigset_t taken;
    sigset_t saved;
    ::sigemptyset(&taken);
    for (int signo : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) {
        ::sigaddset(&taken, signo);
    }
    if (::sigprocmask(SIG_BLOCK, &taken, &saved) != 0) {
        return common::sys_error("sigprocmask");
    }
    common::UniqueFd signals(::signalfd(-1, &taken, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals) {
        auto error = common::sys_error("signalfd");
        ::sigprocmask(SIG_SETMASK, &saved, nullptr);
        return error;
    }
    Supervisor supervisor(options, saved, std::move(signals));
    auto first = supervisor.start_daemon();
    if (!first) {
        ::sigprocmask(SIG_SETMASK, &saved, nullptr);
        return std::unexpected(first.error());
    }
    if (*first) {
        return Supervision{std::nullopt, std::move(**first)};
    }
    // Only the first daemon answers the original process; a copy kept here would keep it waiting for a
    // daemon that died before it was ready.
    readiness = Readiness();
    if (!options.log_path.empty()) {
        log_to_file(options.log_path, 0, 0);  // never rotated by the supervisor: the daemon does that
    }
    return supervisor.run();
}

}  // namespace mpctl::daemon
