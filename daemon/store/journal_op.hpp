#pragma once
// JournalOp: one write waiting for its commit. Those that someone waits for (a submit's rows, a pool's
// size) carry the completion DONE, run on the loop with the commit's result; state updates carry none and
// are retried until they are written. A read (an environment a finished task let go of) rides the same
// queue, so that it runs where commits run and never on the loop while a commit fsyncs.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/store/manager_rows.hpp>
#include <mpctl/daemon/store/segment_rows.hpp>
#include <mpctl/daemon/store/task_rows.hpp>

namespace mpctl::daemon {

struct JournalOp {
    using Done = std::function<void(common::Result<void>)>;
    enum class Kind {
        insert_environment,
        insert_task,
        update_task,
        set_pool,
        drop_pool,
        delete_pool,
        delete_task,
        read_environment,
        raise_meta,
        put_segment,
        delete_segment,
        manager,
        barrier  // writes nothing: its DONE runs once every write queued before it is committed
    } kind;
    // Tasks; an environment's id and JSON ride in row.id and row.spec, raise_meta's value in row.id.
    TaskRow row;
    std::string pool;  // set_pool, drop_pool; raise_meta's key
    int workers = 0;
    bool transient = false;
    Done done;
    std::string worker = {};   // set_pool: a warm pool's worker as JSON text, empty for a cold pool
    std::string backend = {};  // set_pool: a Slurm pool's settings as JSON text, empty for a local pool
    // read_environment: the text of environment row.id goes into (*read_into)[row.id].
    std::shared_ptr<std::map<int64_t, std::string>> read_into = nullptr;
    // put_segment's row; delete_segment's name rides in pool.
    std::shared_ptr<const SegmentRow> segment = nullptr;
    // manager: a queue's or a dict's change.
    std::shared_ptr<const ManagerWrite> manager = nullptr;

    // An update nobody waits for: when a commit fails it is queued again rather than reported.
    [[nodiscard]] bool retried() const { return kind == Kind::update_task; }
};

}  // namespace mpctl::daemon
