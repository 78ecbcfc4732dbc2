#include <cerrno>
#include <cstring>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mpctl/cli/child_process.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/signal_pipe.hpp>
#include <mpctl/common/sys.hpp>

extern char** environ;

namespace mpctl::cli {

int run_child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env) {
    if (argv.empty()) {
        throw CliError(exit_code::usage, "no command to run");
    }
    int signals = install_signal_pipe({SIGTERM, SIGHUP});
    struct sigaction ignore {
    }, old_int{}, old_quit{};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGINT, &ignore, &old_int);
    ::sigaction(SIGQUIT, &ignore, &old_quit);

    std::vector<std::string> env_strings = extra_env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string entry(*e);
        bool replaced = false;
        for (const auto& extra : extra_env) {
            replaced = replaced || entry.compare(0, extra.find('=') + 1, extra, 0, extra.find('=') + 1) == 0;
        }
        if (!replaced) {
            env_strings.push_back(std::move(entry));
        }
    }
    std::vector<char*> envp, args;
    for (auto& s : env_strings) {
        envp.push_back(s.data());
    }
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (auto& a : argv_copy) {
        args.push_back(a.data());
    }
    args.push_back(nullptr);

    // The command starts with every signal as the shell would give it: default actions, nothing blocked.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t defaults, none;
    sigemptyset(&defaults);
    for (int s : {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE}) {
        sigaddset(&defaults, s);
    }
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    int err = ::posix_spawnp(&pid, args[0], nullptr, &attr, args.data(), envp.data());
    posix_spawnattr_destroy(&attr);
    if (err != 0) {
        ::sigaction(SIGINT, &old_int, nullptr);
        ::sigaction(SIGQUIT, &old_quit, nullptr);
        bool missing = err == ENOENT;
        std::string what = missing ? "command not found" : std::strerror(err);
        throw CliError(missing ? exit_code::not_found : exit_code::cannot_execute, argv[0] + ": " + what);
    }
    auto pidfd = common::pidfd_open(pid);
    int status = 0;
    for (;;) {
        pollfd fds[2] = {{pidfd ? pidfd->get() : -1, POLLIN, 0}, {signals, POLLIN, 0}};
        int r = ::poll(fds, 2, pidfd ? -1 : 100);
        if (r < 0 && errno != EINTR) {
            break;
        }
        for (int signo : take_signals(signals)) {
            ::kill(pid, signo);
        }
        pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            break;
        }
    }
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGQUIT, &old_quit, nullptr);
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : exit_code::failure;
}

}  // namespace mpctl::cli
