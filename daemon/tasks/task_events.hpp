#pragma once
// TaskEvents: the scheduler's one listener, which passes every change on to its subscribers in the order
// they subscribed. The daemon subscribes the journal first (a change is queued for its commit before
// anyone hears of it), then the future table (waits, as-completed, log followers), output retention, and
// last the daemon's own shutdown (which may end the loop once the last task is done). Loop thread only.

#include <vector>

#include <mpctl/daemon/tasks/task_listener.hpp>

namespace mpctl::daemon {

class TaskEvents final : public TaskListener {
  public:
    void subscribe(TaskListener& listener) { subscribers_.push_back(&listener); }

    void task_changed(const Task& task) override {
        for (TaskListener* l : subscribers_) {
            l->task_changed(task);
        }
    }
    void task_progressed(const Task& task) override {
        for (TaskListener* l : subscribers_) {
            l->task_progressed(task);
        }
    }
    void transient_pool_dropped(const std::string& name) override {
        for (TaskListener* l : subscribers_) {
            l->transient_pool_dropped(name);
        }
    }

  private:
    std::vector<TaskListener*> subscribers_;
};

}  // namespace mpctl::daemon
