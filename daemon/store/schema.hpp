#pragma once
// The journal's schema and connection settings. A database at schema version N (PRAGMA user_version) gets
// the migrations after N applied in one transaction; one written by a newer mpctld is refused.

#include <sqlite3.h>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/store/durability.hpp>

namespace mpctl::daemon {

// WAL mode, the synchronous level of DURABILITY, who checkpoints, the WAL's size limit.
[[nodiscard]] common::Result<void> configure_connection(sqlite3* db, Durability durability);

// The schema version this mpctld writes (PRAGMA user_version of its journals).
[[nodiscard]] int schema_version();

// Brings the schema to this version; refuses a newer one.
[[nodiscard]] common::Result<void> migrate(sqlite3* db);

}  // namespace mpctl::daemon
