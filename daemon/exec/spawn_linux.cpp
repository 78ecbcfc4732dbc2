#include <array>
#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mpctl/daemon/exec/spawn_linux.hpp>

// The child runs on a stack of its own with the daemon's memory: keep the sanitizers' bookkeeping out of it.
#define MPCTL_CHILD_CODE __attribute__((no_sanitize("address", "undefined"), noinline))

namespace mpctl::daemon {

namespace {

constexpr size_t k_stack_size =
    256 * 1024;  // the child makes a few syscalls; generous for instrumented builds

// State shared with the child (CLONE_VM): it reads the setup and, if something fails, writes why.
struct ChildState {
    const ChildSetup* setup = nullptr;
    const int* reset_signals = nullptr;
    size_t reset_count = 0;
    volatile int err = 0;
    const char* volatile step = nullptr;
};

// The child's stack, mapped once. Spawns never overlap (the spawn thread waits for each child's exec).
void* child_stack_top() {
    static void* top = [] {
        long page = ::sysconf(_SC_PAGESIZE);
        void* base = ::mmap(nullptr, k_stack_size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (base == MAP_FAILED) {
            return static_cast<void*>(nullptr);
        }
        ::mprotect(base, static_cast<size_t>(page), PROT_NONE);  // a guard page below the stack
        auto end = reinterpret_cast<uintptr_t>(base) + k_stack_size;
        return reinterpret_cast<void*>(end & ~uintptr_t{15});
    }();
    return top;
}

// Signals whose disposition the child must set back to default before exec: the ones the daemon handles
// (a handler would run the daemon's code in the child) and the ones ignored (an ignored SIGPIPE survives
// exec and breaks `yes | head`; a daemon started with `&` from a script inherits SIGINT ignored). Read
// once, when the first task starts (the daemon's handlers are in place by then: Daemon::run installs
// them first), plus the daemon's own four whatever happens later. Every other one is already default,
// and each reset is a syscall while the daemon waits for the child's exec.
const std::vector<int>& signals_to_reset() {
    static const std::vector<int> signals = [] {
        std::vector<int> out;
        for (int sig = 1; sig < NSIG; ++sig) {
            if (sig == SIGKILL || sig == SIGSTOP) {
                continue;
            }
            struct sigaction sa {};
            if (::sigaction(sig, nullptr, &sa) != 0) {
                continue;  // glibc's internal signals
            }
            bool always = sig == SIGPIPE || sig == SIGINT || sig == SIGTERM || sig == SIGHUP;
            if (always || sa.sa_handler != SIG_DFL) {
                out.push_back(sig);
            }
        }
        return out;
    }();
    return signals;
}

// The child could not become the program: it leaves at once with _exit (it shares the daemon's memory
// and stack-allocated state; exit() would run the daemon's atexit handlers and flush its stdio buffers in
// the child), after writing why for the parent, which wakes when it is gone (CLONE_VFORK).
MPCTL_CHILD_CODE void child_fail(ChildState* st, const char* step) {
    st->err = errno;
    st->step = step;
    ::_exit(127);
}

// Moves FD to TARGET (0, 1 or 2) without close-on-exec.
MPCTL_CHILD_CODE bool child_place(int fd, int target) {
    if (fd == target) {
        int flags = ::fcntl(fd, F_GETFD);
        return flags >= 0 && ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) == 0;
    }
    return ::dup2(fd, target) == target;
}

MPCTL_CHILD_CODE int child_main(void* arg) {
    auto* st = static_cast<ChildState*>(arg);
    const ChildSetup& s = *st->setup;

    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (size_t i = 0; i < st->reset_count; ++i) {
        ::sigaction(st->reset_signals[i], &dfl, nullptr);
    }
    if (::setpgid(0, s.pgid) != 0) {
        child_fail(st, "setpgid");
    }
    if (s.cgroup_procs_fd >= 0) {
        // "0" moves the writing process itself: no pid to format, no race with the child's own children.
        if (::write(s.cgroup_procs_fd, "0", 1) != 1) {
            child_fail(st, "cgroup");
        }
    }
    if (!child_place(s.stdin_fd, 0) || !child_place(s.stdout_fd, 1) || !child_place(s.stderr_fd, 2)) {
        child_fail(st, "dup2");
    }
    if (s.nice) {
        errno = 0;
        if (::setpriority(PRIO_PROCESS, 0, *s.nice) != 0 && errno != 0) {
            child_fail(st, "nice");
        }
    }
    for (const auto& limit : s.limits) {
        struct rlimit rl {
            limit.soft, limit.hard
        };
        if (::setrlimit(limit.resource, &rl) != 0) {
            child_fail(st, "setrlimit");
        }
    }
    if (s.umask) {
        ::umask(*s.umask);
    }
    if (::chdir(s.cwd) != 0) {
        child_fail(st, "chdir");
    }
    // The backstop of fd hygiene: whatever the daemon holds (sockets, inherited fds) stays out.
    if (::close_range(3, ~0U, 0) != 0) {
        for (int fd = 3; fd < 1024; ++fd) {
            ::close(fd);
        }
    }
    sigset_t empty;
    sigemptyset(&empty);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
    ::execve(s.path, s.argv, s.envp);
    if (errno == ENOEXEC && s.script_argv != nullptr) {
        ::execve("/bin/sh", s.script_argv, s.envp);  // a script without "#!", as execvp and shells run it
    }
    child_fail(st, "exec");
    return 127;
}

}  // namespace

common::Result<SpawnedChild> spawn_child(const ChildSetup& setup) {
    void* stack = child_stack_top();
    if (stack == nullptr) {
        return common::sys_error("mmap", ENOMEM);
    }
    const auto& reset = signals_to_reset();
    ChildState st;
    st.setup = &setup;
    st.reset_signals = reset.data();
    st.reset_count = reset.size();

    // Block everything across the clone: until the child has reset its dispositions, a signal would run a
    // daemon handler in the child.
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &old);
    int pidfd = -1;
    pid_t pid = ::clone(child_main, stack, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &st, &pidfd);
    int clone_err = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) {
        return common::sys_error("clone", clone_err);
    }
    // CLONE_VFORK: we run again once the child has exec'd or exited.
    common::UniqueFd fd(pidfd);
    if (st.step != nullptr) {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        // The child wrote the step and its errno into ST (it shares our memory) before it exited.
        return common::sys_error(st.step, st.err);
    }
    return SpawnedChild{pid, std::move(fd)};
}

}  // namespace mpctl::daemon
