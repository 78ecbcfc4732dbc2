#include <mpctl/daemon/store/forget_tasks.hpp>
#include <mpctl/daemon/store/store.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>

namespace mpctl::daemon {

void forget_tasks(Store& store, Scheduler& scheduler, std::vector<int64_t> ids,
                  std::function<void(common::Result<std::vector<int64_t>>)> done) {
    auto doomed = ids;
    store.delete_tasks(
        doomed, [&scheduler, ids = std::move(ids), done = std::move(done)](const common::Result<void>& r) {
            if (!r) {
                done(std::unexpected(r.error()));
                return;
            }
            std::vector<int64_t> forgotten;
            for (int64_t id : ids) {
                if (scheduler.remove(id)) {
                    forgotten.push_back(id);
                }
            }
            done(std::move(forgotten));
        });
}

}  // namespace mpctl::daemon
