#pragma once
// How durable an acknowledged write is (the config file's `durability`).

namespace mpctl::daemon {

enum class Durability {
    full,    // fsync the WAL at every commit: acknowledged work survives power loss
    normal,  // no fsync per commit: acknowledged work survives a crash of the daemon, not of the machine
};

}  // namespace mpctl::daemon
