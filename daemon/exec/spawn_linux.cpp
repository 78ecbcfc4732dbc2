#include <array>
#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <new>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mpctl/daemon/exec/exit_journal.hpp>
#include <mpctl/daemon/exec/spawn_linux.hpp>

// The child runs on a stack of its own with the daemon's memory: keep the sanitizers' bookkeeping out of it.
#define MPCTL_CHILD_CODE __attribute__((no_sanitize("address", "undefined", "thread"), noinline))

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

// Where the child says why it failed: a page of its own, shared, so that the child can write it whether it
// shares the daemon's memory or (under ThreadSanitizer) has a copy. Spawns never overlap.
ChildState* child_state() {
    static ChildState* state = [] {
        void* page =
            ::mmap(nullptr, sizeof(ChildState), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        return page == MAP_FAILED ? nullptr : new (page) ChildState{};
    }();
    return state;
}

#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer cannot follow a child that runs on the daemon's memory: its bookkeeping goes wrong (it
// missed a thread join and reported races that were not there, then crashed reporting them). Under it the
// child gets a copy of the memory instead, as after fork(), and is still waited for until its exec.
constexpr int k_clone_flags = CLONE_VFORK | CLONE_PIDFD | SIGCHLD;
#else
constexpr int k_clone_flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD;
#endif

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

// The child makes raw system calls, never libc's wrappers: a sanitizer intercepts those (sigaction, dup2,
// close, _exit, ...) and would update the parent thread's bookkeeping from a process that only borrows its
// memory (ThreadSanitizer saw races that were not there, then crashed reporting them). syscall(2) is not
// intercepted; it sets errno, which is the parent thread's and is read only after the child is gone.
MPCTL_CHILD_CODE long sys(long number, long a = 0, long b = 0, long c = 0, long d = 0) {
    return ::syscall(number, a, b, c, d);
}

// The child could not become the program: it leaves at once (it shares the daemon's memory and
// stack-allocated state; exit() would run the daemon's atexit handlers and flush its stdio buffers in the
// child), after writing why for the parent, which wakes when it is gone (CLONE_VFORK).
MPCTL_CHILD_CODE void child_fail(ChildState* st, const char* step) {
    st->err = errno;
    st->step = step;
    for (;;) {
        sys(SYS_exit_group, 127);
    }
}

// Moves FD to TARGET (0, 1 or 2) without close-on-exec.
MPCTL_CHILD_CODE bool child_place(int fd, int target) {
    if (fd == target) {
        long flags = sys(SYS_fcntl, fd, F_GETFD);
        return flags >= 0 && sys(SYS_fcntl, fd, F_SETFD, flags & ~FD_CLOEXEC) == 0;
    }
    return sys(SYS_dup2, fd, target) == target;
}

// The kernel's struct sigaction (rt_sigaction), which is not glibc's.
struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
};

MPCTL_CHILD_CODE int child_main(void* arg) {
    auto* st = static_cast<ChildState*>(arg);
    const ChildSetup& s = *st->setup;

    KernelSigaction dfl{SIG_DFL, 0, nullptr, 0};
    for (size_t i = 0; i < st->reset_count; ++i) {
        sys(SYS_rt_sigaction, st->reset_signals[i], reinterpret_cast<long>(&dfl), 0, sizeof dfl.mask);
    }
    if (sys(SYS_setpgid, 0, s.pgid) != 0) {
        child_fail(st, "setpgid");
    }
    if (s.cgroup_procs_fd >= 0) {
        // "0" moves the writing process itself: no pid to format, no race with the child's own children.
        if (sys(SYS_write, s.cgroup_procs_fd, reinterpret_cast<long>("0"), 1) != 1) {
            child_fail(st, "cgroup");
        }
    }
    if (!child_place(s.stdin_fd, 0) || !child_place(s.stdout_fd, 1) || !child_place(s.stderr_fd, 2)) {
        child_fail(st, "dup2");
    }
    if (s.nice) {
        if (sys(SYS_setpriority, PRIO_PROCESS, 0, *s.nice) != 0) {
            child_fail(st, "nice");
        }
    }
    for (const auto& limit : s.limits) {
        struct rlimit rl {
            limit.soft, limit.hard
        };
        if (sys(SYS_prlimit64, 0, limit.resource, reinterpret_cast<long>(&rl), 0) != 0) {
            child_fail(st, "setrlimit");
        }
    }
    if (s.umask) {
        sys(SYS_umask, static_cast<long>(*s.umask));
    }
    if (sys(SYS_chdir, reinterpret_cast<long>(s.cwd)) != 0) {
        child_fail(st, "chdir");
    }
    // The backstop of fd hygiene: whatever the daemon holds (sockets, inherited fds) stays out, but for a
    // warm worker's channel, which becomes descriptor 3.
    int first_closed = 3;
    if (s.channel_fd >= 0) {
        if (!child_place(s.channel_fd, 3)) {
            child_fail(st, "dup2");
        }
        first_closed = 4;
    }
    if (sys(SYS_close_range, first_closed, ~0U, 0) != 0) {
        for (int fd = first_closed; fd < 1024; ++fd) {
            sys(SYS_close, fd);
        }
    }
    uint64_t empty = 0;
    sys(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&empty), 0, sizeof empty);
    sys(SYS_execve, reinterpret_cast<long>(s.path), reinterpret_cast<long>(s.argv),
        reinterpret_cast<long>(s.envp));
    if (errno == ENOEXEC && s.script_argv != nullptr) {
        // A script without "#!", as execvp and shells run it.
        sys(SYS_execve, reinterpret_cast<long>("/bin/sh"), reinterpret_cast<long>(s.script_argv),
            reinterpret_cast<long>(s.envp));
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
    ChildState* state = child_state();
    if (state == nullptr) {
        return common::sys_error("mmap", ENOMEM);
    }
    const auto& reset = signals_to_reset();
    ChildState& st = *state;
    st = ChildState{};
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
    uint64_t start_ticks = boottime_ticks_now();
    pid_t pid = ::clone(child_main, stack, k_clone_flags, &st, &pidfd);
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
        // The child wrote the step and its errno into ST (a shared page) before it exited.
        return common::sys_error(st.step, st.err);
    }
    return SpawnedChild{pid, std::move(fd), start_ticks};
}

}  // namespace mpctl::daemon
