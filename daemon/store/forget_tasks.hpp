#pragma once
// Forgetting finished tasks (task.remove, task.clean, the retention of keep_finished): their journal rows
// are deleted first, in one transaction; only then does the scheduler forget them and their output files go
// (in the background). A journal that cannot be written loses nothing: the tasks stay as they were.
// Loop thread only.

#include <cstdint>
#include <functional>
#include <vector>

#include <mpctl/common/result.hpp>

namespace mpctl::daemon {

class Scheduler;
class Store;

// DONE gets the ids forgotten (those of IDS still finished tasks once the rows are gone), or the error.
void forget_tasks(Store& store, Scheduler& scheduler, std::vector<int64_t> ids,
                  std::function<void(common::Result<std::vector<int64_t>>)> done);

}  // namespace mpctl::daemon
