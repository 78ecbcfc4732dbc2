#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <signal.h>
#include <string>
#include <unistd.h>

#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/signal_pipe.hpp>
#include <mpctl/common/sys.hpp>

namespace mpctl::cli {

namespace {

int g_pipe[2] = {-1, -1};

void on_signal(int signo) {
    int saved = errno;
    char b = static_cast<char>(signo);
    (void)!::write(g_pipe[1], &b, 1);
    errno = saved;
}

}  // namespace

int install_signal_pipe(std::initializer_list<int> signals) {
    if (g_pipe[0] < 0 && ::pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        throw CliError(exit_code::mpctl_failed, std::string("pipe: ") + std::strerror(errno));
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : signals) {
        ::sigaction(sig, &sa, nullptr);
    }
    return g_pipe[0];
}

std::vector<int> take_signals(int read_fd) {
    std::vector<int> out;
    char buf[64];
    for (;;) {
        auto n = common::read_once(read_fd, buf, sizeof buf);
        if (!n || *n == 0) {
            break;
        }
        for (size_t i = 0; i < *n; ++i) {
            out.push_back(static_cast<unsigned char>(buf[i]));
        }
    }
    return out;
}

}  // namespace mpctl::cli
