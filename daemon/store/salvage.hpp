#pragma once
// Salvage: reading what SQLite can still read from a damaged journal, row by row, into a fresh one.
//
// Debian's libsqlite3 (3.40) has no recovery extension, so this reads with plain queries. Each table is
// scanned in rowid order; where a read fails (a damaged page, or a row whose overflow pages are), the scan
// resumes at the first rowid whose page reads again, found by probing ahead (next_readable), and the
// rowids skipped are recorded as unreadable. Rows that read but make no sense (a spec that does not parse,
// a key out of order) are rejected rather than copied: the fresh journal holds only rows a start can use.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <sqlite3.h>

#include <mpctl/common/result.hpp>

namespace mpctl::daemon {

// What reading from key S onwards finds first: a row, the end of the table, or damage.
enum class Probe { row, end, failed };

// Where reading goes on after it failed at key FAILED_AT: the smallest key above it at which PROBE does
// not fail, or nullopt if it fails up to the largest key. Assumes the keys that fail form one run from
// FAILED_AT (a damaged page holds consecutive keys): probes ahead by doubling steps, then bisects back,
// so a run of N keys costs about 2 log2(N) probes. A readable stretch between two damaged runs that both
// fall within one doubling step may be stepped over.
[[nodiscard]] std::optional<int64_t> next_readable(int64_t failed_at,
                                                   const std::function<Probe(int64_t)>& probe);

struct KeyRange {
    int64_t first = 0;
    int64_t last = 0;  // INT64_MAX: to the end of the table
};

// How salvaging one table went.
struct TableSalvage {
    std::string table;
    int64_t copied = 0;
    int64_t rejected = 0;              // rows read but not usable
    std::vector<KeyRange> unreadable;  // rowids on pages that could not be read
    int64_t highest_key = 0;           // the highest rowid read (copied or not)
    std::optional<std::string> error;  // SQLite's words at the first failure
    bool absent = false;               // not in the damaged journal's schema (an older one): nothing lost

    // Rows lost: the rejected ones, and the rowids in unreadable ranges up to BOUND (the highest rowid
    // the table can have held). Rowids have gaps, so for ranges this is an upper estimate.
    [[nodiscard]] int64_t lost(int64_t bound) const;
};

// Copies the readable, usable rows of the journal's tables from SOURCE into TARGET (a journal at this
// schema version, inside the caller's transaction). Columns SOURCE lacks (an older schema) get their
// defaults. Only a failure to write TARGET is an Error: what SOURCE cannot give is in the TableSalvage.
[[nodiscard]] common::Result<TableSalvage> salvage_tasks(sqlite3* source, sqlite3* target);
[[nodiscard]] common::Result<TableSalvage> salvage_environments(sqlite3* source, sqlite3* target);
[[nodiscard]] common::Result<TableSalvage> salvage_pools(sqlite3* source, sqlite3* target);
[[nodiscard]] common::Result<TableSalvage> salvage_meta(sqlite3* source, sqlite3* target);
// The manager's tables: queues, queue_items, dicts, dict_entries, and the remote clients' tokens, in that
// order.
[[nodiscard]] common::Result<std::vector<TableSalvage>> salvage_manager(sqlite3* source, sqlite3* target);
// The shared-memory segments' rows: a start then takes back those whose file and lease still hold.
[[nodiscard]] common::Result<TableSalvage> salvage_segments(sqlite3* source, sqlite3* target);

}  // namespace mpctl::daemon
