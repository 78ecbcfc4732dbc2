#include <string_view>

#include <mpctl/daemon/exec/pipefail.hpp>
#include <mpctl/daemon/tasks/pipeline_outcome.hpp>

namespace mpctl::daemon {

bool stage_succeeded(const Task& t, size_t i) {
    const Task::StageRun& s = t.stages[i];
    const auto& pipeline = t.spec.pipeline();
    std::string_view command;
    if (i < pipeline.size() && !pipeline[i].empty()) {
        command = pipeline[i].front();
    }
    return stage_ok(i, t.stages.size(), s.exit_code, s.signal, command);
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
