#pragma once
// The few SQLite calls every file of the store repeats, as Results: an error carries SQLite's own message.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <sqlite3.h>

#include <mpctl/common/result.hpp>

namespace mpctl::daemon::sqlite {

// Whether SQLite result code RC says the file is damaged (corrupt, or not a database at all), as opposed to
// a failure of the moment (full disk, busy, out of memory): only damage is what `mpctld --recover` is for.
[[nodiscard]] bool is_damage(int rc);

// An Error naming WHAT and SQLite's last message on DB; coded damaged when the last failure was damage.
[[nodiscard]] common::Error error(sqlite3* db, const std::string& what);

// A connection, closed (sqlite3_close_v2) when it goes.
struct CloseDb {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, CloseDb>;

// Opens PATH with FLAGS (SQLITE_OPEN_NOMUTEX added: each connection stays on one thread) and a busy
// timeout of BUSY_MS, through the journal's VFS (journal_vfs.hpp: no other process may have PATH open). The
// error reads "open PATH: SQLite's message".
[[nodiscard]] common::Result<Db> open(const std::string& path, int flags, int busy_ms);

// Runs SQL (one or more statements, no rows). Damage is coded as in error().
[[nodiscard]] common::Result<void> exec(sqlite3* db, const char* sql);

// Steps a prepared statement that returns no rows, and resets it for the next time.
[[nodiscard]] common::Result<void> run(sqlite3* db, sqlite3_stmt* stmt);

// Compiles SQL once, for a statement kept for the life of the connection.
[[nodiscard]] common::Result<sqlite3_stmt*> prepare(sqlite3* db, const char* sql);

// A statement compiled for one use; finalized when it goes.
class Query {
  public:
    Query(sqlite3* db, const char* sql);
    ~Query() { sqlite3_finalize(stmt_); }
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;

    [[nodiscard]] bool ok() const { return stmt_ != nullptr; }
    [[nodiscard]] sqlite3_stmt* get() const { return stmt_; }
    // SQLITE_ROW while there are rows, then SQLITE_DONE (or an error code).
    int step() { return sqlite3_step(stmt_); }

  private:
    sqlite3_stmt* stmt_ = nullptr;
};

void bind_optional(sqlite3_stmt* stmt, int index, const std::optional<std::string>& value);
void bind_optional(sqlite3_stmt* stmt, int index, const std::optional<int64_t>& value);
void bind_optional(sqlite3_stmt* stmt, int index, const std::optional<int>& value);

[[nodiscard]] std::optional<int64_t> column_int(sqlite3_stmt* stmt, int col);
[[nodiscard]] std::string column_text(sqlite3_stmt* stmt, int col);
[[nodiscard]] std::optional<std::string> column_optional_text(sqlite3_stmt* stmt, int col);

}  // namespace mpctl::daemon::sqlite
