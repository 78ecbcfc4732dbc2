#include <signal.h>

#include <mpctl/daemon/tasks/pipeline_outcome.hpp>

namespace mpctl::daemon {

bool stage_succeeded(const Task& t, size_t i) {
    const Task::StageRun& s = t.stages[i];
    bool before_last = i + 1 < t.stages.size();
    bool broken_pipe = s.signal == SIGPIPE || (!s.signal && s.exit_code == 128 + SIGPIPE);
    if (before_last && broken_pipe) {
        return true;
    }
    return !s.signal && s.exit_code.value_or(0) == 0;
}

ExitInfo pipeline_outcome(const Task& t) {
    for (size_t i = t.stages.size(); i-- > 0;) {
        if (!stage_succeeded(t, i)) {
            return ExitInfo{t.stages[i].exit_code, t.stages[i].signal};
        }
    }
    return ExitInfo{0, std::nullopt};
}

}  // namespace mpctl::daemon
