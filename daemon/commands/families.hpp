#pragma once
// The command families. Each registers its methods with the registry; the daemon's method table is the
// union of these lists (see proto/PROTOCOL.md for each method's contract).

namespace mpctl::daemon {

class Daemon;
class Registry;

void register_task_commands(Registry& registry, Daemon& daemon);
void register_pool_commands(Registry& registry, Daemon& daemon);
void register_daemon_commands(Registry& registry, Daemon& daemon);

}  // namespace mpctl::daemon
