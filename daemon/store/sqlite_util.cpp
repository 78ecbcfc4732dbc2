#include <mpctl/daemon/store/journal_vfs.hpp>
#include <mpctl/daemon/store/sqlite_util.hpp>

namespace mpctl::daemon::sqlite {

bool is_damage(int rc) {
    // Extended codes (SQLITE_CORRUPT_INDEX...) keep the primary code in the low byte.
    int primary = rc & 0xff;
    return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

common::Result<Db> open(const std::string& path, int flags, int busy_ms) {
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, journal_vfs());
    Db db(raw);  // closed on every path out, a failed open's handle included
    if (rc != SQLITE_OK) {
        return common::plain_error("open " + path + ": " +
                                   (raw != nullptr ? sqlite3_errmsg(raw) : "out of memory"));
    }
    sqlite3_busy_timeout(raw, busy_ms);
    return db;
}

common::Error error(sqlite3* db, const std::string& what) {
    return common::Error{
        is_damage(sqlite3_extended_errcode(db)) ? common::Errc::damaged : common::Errc::failed, 0,
        what + ": " + sqlite3_errmsg(db)};
}

common::Result<void> exec(sqlite3* db, const char* sql) {
    char* message = nullptr;
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
        std::string text = message != nullptr ? message : "unknown error";
        sqlite3_free(message);
        return common::plain_error("sqlite: " + text,
                                   is_damage(rc) ? common::Errc::damaged : common::Errc::failed);
    }
    return {};
}

common::Result<void> run(sqlite3* db, sqlite3_stmt* stmt) {
    if (sqlite3_step(stmt) == SQLITE_DONE) {
        sqlite3_reset(stmt);
        return {};
    }
    common::Error e = error(db, "sqlite");  // before the reset clears the message
    sqlite3_reset(stmt);
    return std::unexpected(std::move(e));
}

common::Result<sqlite3_stmt*> prepare(sqlite3* db, const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
        return std::unexpected(error(db, "prepare"));
    }
    return stmt;
}

Query::Query(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
        sqlite3_finalize(stmt_);
        stmt_ = nullptr;
    }
}

void bind_optional(sqlite3_stmt* stmt, int index, const std::optional<std::string>& value) {
    if (value) {
        sqlite3_bind_text(stmt, index, value->c_str(), static_cast<int>(value->size()), SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(stmt, index);
    }
}

void bind_optional(sqlite3_stmt* stmt, int index, const std::optional<int64_t>& value) {
    if (value) {
        sqlite3_bind_int64(stmt, index, static_cast<sqlite3_int64>(*value));
    } else {
        sqlite3_bind_null(stmt, index);
    }
}

void bind_optional(sqlite3_stmt* stmt, int index, const std::optional<int>& value) {
    bind_optional(stmt, index, value ? std::optional<int64_t>(*value) : std::nullopt);
}

std::optional<int64_t> column_int(sqlite3_stmt* stmt, int col) {
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
        return std::nullopt;
    }
    return sqlite3_column_int64(stmt, col);
}

std::string column_text(sqlite3_stmt* stmt, int col) {
    const auto* text = sqlite3_column_text(stmt, col);
    return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
}

std::optional<std::string> column_optional_text(sqlite3_stmt* stmt, int col) {
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
        return std::nullopt;
    }
    return column_text(stmt, col);
}

}  // namespace mpctl::daemon::sqlite
