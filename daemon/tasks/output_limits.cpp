#include <spdlog/spdlog.h>

#include <mpctl/daemon/tasks/output_limits.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>

namespace mpctl::daemon {

void cap_output(const OutputLayout& outputs, Task& t, uint64_t limit) {
    OutputPaths paths = outputs.paths(t.id);
    bool cut = OutputLayout::cap(paths.stdout_path, limit);
    if (t.spec.pipeline().empty()) {
        cut = OutputLayout::cap(paths.stderr_path, limit) || cut;
    } else {
        for (size_t i = 0; i < t.spec.pipeline().size(); ++i) {
            cut = OutputLayout::cap(outputs.stage_stderr_path(t.id, i), limit) || cut;
        }
    }
    if (cut && !t.truncated) {
        spdlog::info("task {}: output past {} bytes is not kept", t.id, limit);
    }
    t.truncated = t.truncated || cut;
}

OutputLimits::~OutputLimits() {
    timers_.cancel(timer_);
}

void OutputLimits::task_changed(const Task& task) {
    if (task.state == TaskState::running && timer_ == 0) {
        arm();
    }
}

void OutputLimits::arm() {
    timer_ = timers_.start(k_output_check, [this] {
        timer_ = 0;
        scheduler_.enforce_output_limits();
        if (scheduler_.running_count() > 0) {
            arm();
        }
    });
}

}  // namespace mpctl::daemon
