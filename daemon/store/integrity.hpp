#pragma once
// Finding damage in the journal at start, before anything is written to it.
//
// The start-up reads alone do not find all of it: they scan the tasks table, but read environments by
// point lookups and never touch the free list, so a damaged page there opened fine and failed (or, worse,
// was written over) later. PRAGMA quick_check reads every page once: 50 to 135 ms of CPU for a journal of
// 100,000 tasks, against 1.8 to 2.6 s for the whole start of the daemon on it (README: "A damaged
// journal"; tests/bench/bench_journal_check.py).

#include <sqlite3.h>

#include <mpctl/common/result.hpp>

namespace mpctl::daemon {

// Checks every page of DB's main database; a damaged one is an Error coded damaged, with SQLite's words.
[[nodiscard]] common::Result<void> check_integrity(sqlite3* db);

}  // namespace mpctl::daemon
