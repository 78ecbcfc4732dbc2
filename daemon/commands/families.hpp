#pragma once
// The command families. Each registers its methods with the registry, and each gets only what it uses:
// a context of references to the daemon's parts, never the Daemon. The daemon's method table is the union
// of these lists (see proto/PROTOCOL.md for each method's contract). docs/ARCHITECTURE.md says how to add
// a family.

namespace mpctl::daemon {

class DaemonControl;
class Registry;
struct ManagerContext;
struct PoolContext;
struct ShmContext;
struct SyncContext;
struct TaskContext;
class TokenTable;

// task.*: one file per kind of request, all on a TaskContext (task_context.hpp).
void register_task_submit_commands(Registry& registry,
                                   const TaskContext& ctx);  // submit, submit_batch, restart
void register_task_query_commands(Registry& registry, const TaskContext& ctx);    // get, list
void register_task_wait_commands(Registry& registry, const TaskContext& ctx);     // wait, as_completed
void register_task_control_commands(Registry& registry, const TaskContext& ctx);  // cancel, signal
void register_task_logs_command(Registry& registry, const TaskContext& ctx);      // logs
void register_task_remove_commands(Registry& registry, const TaskContext& ctx);   // remove, clean

// pool.*: set, list, delete.
void register_pool_commands(Registry& registry, const PoolContext& ctx);

// lock.*: acquire, release, list.
void register_lock_commands(Registry& registry, const SyncContext& ctx);
// sem.*: acquire, release, list; event.*: set, clear, wait, list; barrier.*: wait, list.
void register_sync_commands(Registry& registry, const SyncContext& ctx);

// shm.*: create, unlink, list, info, read, write.
void register_shm_commands(Registry& registry, const ShmContext& ctx);

// queue.*: put, get, info, list, delete; kv.*: set, get, del, list, cas, watch.
void register_queue_commands(Registry& registry, const ManagerContext& ctx);
void register_kv_commands(Registry& registry, const ManagerContext& ctx);

// token.*: create, list, revoke; session.auth (answered by a TLS connection's bridge before this).
void register_token_commands(Registry& registry, TokenTable& tokens);

// daemon.*: status, stop, methods.
void register_daemon_commands(Registry& registry, DaemonControl& daemon);

}  // namespace mpctl::daemon
