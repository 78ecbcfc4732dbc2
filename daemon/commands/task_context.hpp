#pragma once
// TaskContext: what the task family (task.*) works with, and nothing more: the scheduler's table, how a
// task is shown, the journal, the future table, the interned environments, the log streamer and whether
// --cgroup is available. The handlers live in task_*_commands.cpp, one file per kind of request; the
// helpers below are what they share. Loop thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <asio/io_context.hpp>

#include <mpctl/daemon/exec/task_cgroups.hpp>
#include <mpctl/daemon/logs/log_streamer.hpp>
#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/daemon/store/store.hpp>
#include <mpctl/daemon/tasks/environments.hpp>
#include <mpctl/daemon/tasks/future_table.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>
#include <mpctl/daemon/tasks/status_view.hpp>
#include <mpctl/proto/params.hpp>

namespace mpctl::daemon {

struct TaskContext {
    asio::io_context& io;  // for the timers of waits
    Scheduler& scheduler;
    const StatusView& view;
    Store& store;
    FutureTable& futures;
    Environments& environments;
    LogStreamer& logs;
    const TaskCgroups& cgroups;
};

// A task the client may know about (its row is committed); throws unknown_id otherwise.
[[nodiscard]] const Task& known_task(const TaskContext& ctx, int64_t id);

// Handlers read every param before they look anything up, so that invalid params are refused as such
// whatever tasks exist (what proto/schemas/params.schema.json promises); then they ask for the tasks.

// params.id: a task id, which is a positive integer (0 is invalid_params, not an unknown task).
[[nodiscard]] int64_t read_id(const proto::Params& params);

// params.ids (an array of 1 to 100,000) or params.id (one), not both, deduplicated in first-seen order;
// throws invalid_params.
[[nodiscard]] std::vector<int64_t> read_ids(const proto::Params& params);

// Throws unknown_id naming every one of IDS the client cannot know.
void require_known(const TaskContext& ctx, const std::vector<int64_t>& ids);

// Runs START now, or, when one of IDS (known) has finished a moment ago, once the journal holds every end
// (FutureTable::after_journal): an outcome a client hears is one a crash cannot take back. Then a task
// forgotten meanwhile is said unknown to RESPONDER, as it would have been at once, and a client gone
// meanwhile is left alone.
void after_ends_journaled(const TaskContext& ctx, const std::vector<int64_t>& ids,
                          const std::shared_ptr<Responder>& responder, std::function<void()> start);

// params.timeout in seconds, if given (0 to one year).
[[nodiscard]] std::optional<std::chrono::milliseconds> read_timeout(const proto::Params& params);

}  // namespace mpctl::daemon
