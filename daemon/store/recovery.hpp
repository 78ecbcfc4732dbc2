#pragma once
// `mpctld --recover`: a damaged journal is moved aside, never deleted, and the daemon starts from what
// could still be read from it.
//
// The steps, so that no moment leaves the state dir without one of the two journals: what can be read is
// salvaged (salvage.hpp) into a fresh journal built beside the damaged one (PATH.recovering, in one
// transaction); then the damaged journal and its companions (-wal, -shm) are renamed to
// PATH.corrupt-<UTC time>, and the fresh one to PATH. The damaged journal is only ever opened read-only.
// A start after a crash between those renames finds no journal and begins an empty one; the damaged one
// is still where the log said it would go.

#include <cstdint>
#include <string>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/store/salvage.hpp>

namespace mpctl::daemon {

struct RecoveryReport {
    std::string path;                // the journal
    std::string moved_to;            // where the damaged journal went
    std::vector<std::string> moved;  // every file moved, the journal first
    TableSalvage tasks;
    TableSalvage environments;
    TableSalvage pools;
    TableSalvage meta;
    TableSalvage segments;
    std::vector<TableSalvage> manager;  // queues, queue_items, dicts, dict_entries, tokens
    int64_t next_task_id = 1;           // new tasks' ids start here: above anything the old journal shows
    int64_t next_environment_id = 1;    // likewise for environments, which salvaged tasks refer to by id
    std::string unreadable_schema;      // when nothing could be read at all: SQLite's words
};

// The name the damaged journal at PATH gets when recovered at UNIX_MS: PATH.corrupt-20261202T153000Z,
// with -2, -3... after it for the ATTEMPT-th try when that name is taken.
[[nodiscard]] std::string aside_name(const std::string& path, int64_t unix_ms, int attempt = 1);

// Salvages the damaged journal at PATH into a fresh one there and moves the damaged one aside (above).
// MIN_NEXT_TASK_ID: the lowest id new tasks may get for what is known outside the journal (the output
// files of its tasks); the fresh journal records a high-water mark at or above it. Refuses a journal
// written by a newer mpctld, which would lose what this one does not know.
[[nodiscard]] common::Result<RecoveryReport> recover_journal(const std::string& path,
                                                             int64_t min_next_task_id, int64_t unix_ms);

// What the log says about a recovery, one line each.
[[nodiscard]] std::vector<std::string> describe(const RecoveryReport& report);

}  // namespace mpctl::daemon
