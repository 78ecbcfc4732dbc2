#include <signal.h>
#include <string_view>

#include <mpctl/daemon/tasks/pipeline_outcome.hpp>

namespace mpctl::daemon {

bool is_shell(const std::string& command) {
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

bool stage_succeeded(const Task& t, size_t i) {
    const Task::StageRun& s = t.stages[i];
    bool before_last = i + 1 < t.stages.size();
    // A shell reports a child killed by SIGPIPE as its own exit 141; any other program that exits 141 means
    // 141 (bash's pipefail forgives neither).
    bool shell_reports_sigpipe = !s.signal && s.exit_code == 128 + SIGPIPE && [&] {
        const auto& pipeline = t.spec.pipeline();
        return i < pipeline.size() && !pipeline[i].empty() && is_shell(pipeline[i].front());
    }();
    bool broken_pipe = s.signal == SIGPIPE || shell_reports_sigpipe;
    if (before_last && broken_pipe) {
        return true;
    }
    return !s.signal && s.exit_code.value_or(0) == 0;
}

ExitInfo pipeline_outcome(const Task& t) {
    for (size_t i = t.stages.size(); i-- > 0;) {
        if (!stage_succeeded(t, i)) {
            return ExitInfo{t.stages[i].exit_code, t.stages[i].signal, {}};
        }
    }
    return ExitInfo{0, std::nullopt, {}};
}

}  // namespace mpctl::daemon
