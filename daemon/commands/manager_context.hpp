#pragma once
// ManagerContext: what the manager family (queue.*, kv.*) works with: the queues and the dicts, which
// journal through the Store. Loop thread only.

#include <mpctl/daemon/manager/kv_table.hpp>
#include <mpctl/daemon/manager/queue_table.hpp>

namespace mpctl::daemon {

struct ManagerContext {
    QueueTable& queues;
    KvTable& dicts;
};

}  // namespace mpctl::daemon
