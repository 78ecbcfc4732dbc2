#pragma once
// TaskListener: what hears about task changes. The scheduler has exactly one listener (a TaskEvents, which
// passes each change on to the journal, the future table, output retention and the daemon's shutdown, in
// that order); unit tests give it a recorder. Loop thread only.

#include <string>

#include <mpctl/daemon/tasks/task.hpp>

namespace mpctl::daemon {

class TaskListener {
  public:
    virtual ~TaskListener() = default;
    // After every change of a durable task's state or journaled fields. TASK stays valid during the call,
    // and a listener must not start, cancel or finish tasks from here (TaskEvents's later subscribers
    // would hear of that change before this one).
    virtual void task_changed(const Task& task) = 0;
    // A change only the journal keeps: a stage of a pipeline ended while the others run on (state, and
    // everything a client sees, unchanged).
    virtual void task_progressed(const Task& /*task*/) {}
    // A transient pool (a map's) is gone: its owner left and it has no unfinished task.
    virtual void transient_pool_dropped(const std::string& /*name*/) {}
};

}  // namespace mpctl::daemon
