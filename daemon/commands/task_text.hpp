#pragma once
// Task answers written as JSON text by hand: lists, waits and completion notifications carry thousands of
// status objects, and building each as a nlohmann object only to dump it cost more than the rest of the
// request (task.wait on a 2000-task batch: 20 ms -> 6 ms).

#include <cstdint>
#include <string>
#include <vector>

#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/daemon/tasks/status_view.hpp>

namespace mpctl::daemon {

// [status, ...] appended to OUT.
void append_statuses(const StatusView& view, const std::vector<const Task*>& tasks, std::string& out);
// [id, ...] appended to OUT.
void append_ids(const std::vector<int64_t>& ids, std::string& out);
// {"tasks":[status, ...]}
[[nodiscard]] std::string tasks_text(const StatusView& view, const std::vector<const Task*>& tasks);
// One task.completed notification (a map streams one per task); BRIEF: with the brief status.
void notify_completed(const StatusView& view, Responder& responder, const Task& task, bool brief = false);

}  // namespace mpctl::daemon
