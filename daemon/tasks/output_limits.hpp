#pragma once
// Output retention: each output stream of a task keeps at most its max_output bytes (the task keeps
// running; what it writes beyond is not kept, and its status says truncated). The files are cut back
// every k_output_check while tasks run, and once more as each task ends, which makes the cut final.

#include <chrono>
#include <cstdint>

#include <mpctl/daemon/exec/output_files.hpp>
#include <mpctl/daemon/tasks/task.hpp>
#include <mpctl/daemon/tasks/task_listener.hpp>
#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::daemon {

class Scheduler;

inline constexpr std::chrono::milliseconds k_output_check{250};

// Cuts each of TASK's output files back to LIMIT bytes; marks it truncated if anything was cut.
void cap_output(const OutputLayout& outputs, Task& task, uint64_t limit);

// The periodic cut: armed when a task starts, re-armed while any runs. Loop thread only.
class OutputLimits final : public TaskListener {
  public:
    OutputLimits(Scheduler& scheduler, Timers& timers) : scheduler_(scheduler), timers_(timers) {}
    ~OutputLimits() override;

    void task_changed(const Task& task) override;

  private:
    void arm();

    Scheduler& scheduler_;
    Timers& timers_;
    TimerId timer_ = 0;
};

}  // namespace mpctl::daemon
