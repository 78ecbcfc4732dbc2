#include <signal.h>

#include <mpctl/daemon/exec/pipefail.hpp>

namespace mpctl::daemon {

bool is_shell(std::string_view command) {
    std::string_view name = command;
    if (auto slash = name.rfind('/'); slash != std::string_view::npos) {
        name.remove_prefix(slash + 1);
    }
    for (std::string_view shell : {"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox"}) {
        if (name == shell) {
            return true;
        }
    }
    return false;
}

bool stage_ok(size_t i, size_t n, std::optional<int> exit_code, std::optional<int> signal,
              std::string_view command) {
    // A shell reports a child killed by SIGPIPE as its own exit 141; any other program that exits 141 means
    // 141 (bash's pipefail forgives neither).
    bool broken_pipe = signal == SIGPIPE || (!signal && exit_code == 128 + SIGPIPE && is_shell(command));
    if (i + 1 < n && broken_pipe) {
        return true;
    }
    return !signal && exit_code.value_or(0) == 0;
}

}  // namespace mpctl::daemon
