#pragma once
// StatusView: a task as clients see it, the status object of proto/task_status.hpp (where its output
// files are, each stage of a pipeline, the cwd it runs in). What task.get, task.list, task.wait, the
// completion notifications and task.logs answer with. Loop thread only.

#include <functional>
#include <string>

#include <mpctl/daemon/exec/output_files.hpp>
#include <mpctl/daemon/tasks/task.hpp>
#include <mpctl/proto/task_status.hpp>

namespace mpctl::daemon {

class StatusView {
  public:
    // DEFAULT_CWD: where a task without a cwd runs (the scheduler's Options::default_cwd).
    StatusView(const OutputLayout& outputs, std::string default_cwd)
        : outputs_(outputs), default_cwd_(std::move(default_cwd)) {}

    [[nodiscard]] proto::TaskStatus status(const Task& task) const;
    // The same, as JSON text (every submit and task.get answers with one).
    [[nodiscard]] std::string text(const Task& task) const { return proto::to_json_text(status(task)); }
    [[nodiscard]] const OutputLayout& outputs() const { return outputs_; }
    // Where a pool's tasks run (Scheduler::backend): a running task of a Slurm pool is shown as one before
    // it has a job id.
    void set_backend_of(std::function<std::string(const std::string& pool)> fn) {
        backend_of_ = std::move(fn);
    }

  private:
    const OutputLayout& outputs_;
    std::string default_cwd_;
    std::function<std::string(const std::string& pool)> backend_of_;
};

}  // namespace mpctl::daemon
