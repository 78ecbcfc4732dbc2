#include "journal_damage.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <sqlite3.h>

namespace mpctl::test {

namespace {

constexpr char k_garbage = static_cast<char>(0xA5);  // not a b-tree page type, nor any header field

void run(sqlite3* db, const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
        std::string text = message != nullptr ? message : "?";
        sqlite3_free(message);
        throw std::runtime_error(sql + ": " + text);
    }
}

int64_t page_size(const std::string& db_path) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(("file:" + db_path + "?mode=ro&immutable=1").c_str(), &db,
                    SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
    sqlite3_stmt* stmt = nullptr;
    int64_t size = 4096;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        size = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return size;
}

void overwrite(const std::string& path, int64_t offset, int64_t length) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    if (!f) {
        throw std::runtime_error("open " + path);
    }
    f.seekp(offset);
    std::string garbage(static_cast<size_t>(length), k_garbage);
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    if (!f) {
        throw std::runtime_error("write " + path);
    }
}

}  // namespace

void checkpoint_journal(const std::string& db_path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
        sqlite3_close(db);
        throw std::runtime_error("open " + db_path);
    }
    run(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
}

std::vector<int64_t> leaf_pages(const std::string& db_path, const std::string& table) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(("file:" + db_path + "?mode=ro&immutable=1").c_str(), &db,
                    SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
    sqlite3_stmt* stmt = nullptr;
    std::string sql = "SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = 'leaf' ORDER BY pageno";
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
        std::string message = sqlite3_errmsg(db);
        sqlite3_close(db);
        throw std::runtime_error("dbstat (SQLite built without SQLITE_ENABLE_DBSTAT_VTAB?): " + message);
    }
    sqlite3_bind_text(stmt, 1, table.c_str(), -1, SQLITE_TRANSIENT);
    std::vector<int64_t> pages;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        pages.push_back(sqlite3_column_int64(stmt, 0));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return pages;
}

void overwrite_page(const std::string& db_path, int64_t page) {
    int64_t size = page_size(db_path);
    overwrite(db_path, (page - 1) * size, size);
}

void overwrite_header(const std::string& db_path) {
    overwrite(db_path, 0, 100);
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace mpctl::test
