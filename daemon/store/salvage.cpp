#include <algorithm>
#include <cctype>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include <mpctl/common/shm.hpp>
#include <mpctl/daemon/store/salvage.hpp>
#include <mpctl/daemon/store/sqlite_util.hpp>
#include <mpctl/daemon/store/task_rows.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

namespace {

constexpr int64_t k_max_key = std::numeric_limits<int64_t>::max();

// A column to copy, and what stands in for it when the damaged journal's schema is older and lacks it.
struct Column {
    const char* name;
    const char* fallback;
};

// One table to copy: its columns in the order the row check reads them, and the check.
struct TableCopy {
    const char* table;
    std::vector<Column> columns;
    std::function<bool(sqlite3_stmt*)> usable;
};

// The columns TABLE has in DB; empty if it has none (no such table), nullopt if the schema cannot be read.
std::optional<std::set<std::string>> columns_of(sqlite3* db, const std::string& table) {
    sqlite::Query q(db, ("PRAGMA table_info(" + table + ")").c_str());
    if (!q.ok()) {
        return std::nullopt;
    }
    std::set<std::string> names;
    int rc = 0;
    while ((rc = q.step()) == SQLITE_ROW) {
        names.insert(sqlite::column_text(q.get(), 1));
    }
    if (rc != SQLITE_DONE) {
        return std::nullopt;
    }
    return names;
}

common::Result<TableSalvage> copy_table(sqlite3* source, sqlite3* target, const TableCopy& copy) {
    TableSalvage out;
    out.table = copy.table;
    auto present = columns_of(source, copy.table);
    if (!present) {
        out.error = sqlite3_errmsg(source);
        out.unreadable.push_back({1, k_max_key});
        return out;
    }
    if (present->empty()) {
        out.absent = true;
        return out;
    }
    // The rowid comes last, so that the row check sees the columns from 0 as the journal's reads do.
    std::string select = "SELECT ";
    std::string insert = std::string("INSERT OR IGNORE INTO ") + copy.table + " (";
    std::string values;
    for (size_t i = 0; i < copy.columns.size(); ++i) {
        const Column& c = copy.columns[i];
        select += std::string(present->contains(c.name) ? c.name : c.fallback) + ", ";
        insert += std::string(i == 0 ? "" : ", ") + c.name;
        values += (i == 0 ? "?" : ", ?") + std::to_string(i + 1);
    }
    select += std::string("rowid FROM ") + copy.table + " WHERE rowid >= ?1 ORDER BY rowid";
    insert += ") VALUES (" + values + ")";
    const int key_column = static_cast<int>(copy.columns.size());

    sqlite::Query read(source, select.c_str());
    if (!read.ok()) {
        out.error = sqlite3_errmsg(source);
        out.unreadable.push_back({1, k_max_key});
        return out;
    }
    // A failure to write the fresh journal (a full disk) is not the damaged one's: it ends the salvage.
    sqlite::Query write(target, insert.c_str());
    if (!write.ok()) {
        return std::unexpected(sqlite::error(target, std::string("copying ") + copy.table));
    }
    auto start_at = [&](int64_t key) {
        sqlite3_reset(read.get());
        sqlite3_bind_int64(read.get(), 1, key);
    };
    auto probe = [&](int64_t key) {
        start_at(key);
        int rc = read.step();
        return rc == SQLITE_ROW ? Probe::row : rc == SQLITE_DONE ? Probe::end : Probe::failed;
    };

    // Our tables' rowids start at 1 (ids are handed out from 1; the others are SQLite's own).
    int64_t from = 1;
    for (;;) {
        start_at(from);
        bool any = false;
        int64_t last = 0;
        int rc = 0;
        while ((rc = read.step()) == SQLITE_ROW) {
            int64_t key = sqlite3_column_int64(read.get(), key_column);
            // A damaged page can decode to rows that were never written: keys out of order give them away.
            if (key < from || (any && key <= last)) {
                ++out.rejected;
                continue;
            }
            any = true;
            last = key;
            out.highest_key = std::max(out.highest_key, key);
            // Bound before the check, which may convert values in place as it reads them.
            sqlite3_reset(write.get());
            for (int i = 0; i < key_column; ++i) {
                sqlite3_bind_value(write.get(), i + 1, sqlite3_column_value(read.get(), i));
            }
            if (!copy.usable(read.get())) {
                ++out.rejected;
                continue;
            }
            if (write.step() != SQLITE_DONE) {
                return std::unexpected(sqlite::error(target, std::string("copying ") + copy.table));
            }
            // OR IGNORE: a row the fresh journal refuses (a NULL where none may be, a key seen twice).
            if (sqlite3_changes(target) == 0) {
                ++out.rejected;
                continue;
            }
            ++out.copied;
        }
        if (rc == SQLITE_DONE) {
            break;
        }
        if (!out.error) {
            out.error = sqlite3_errmsg(source);
        }
        if (any && last == k_max_key) {
            break;
        }
        int64_t failed_at = any ? last + 1 : from;
        auto next = next_readable(failed_at, probe);
        out.unreadable.push_back({failed_at, next ? *next - 1 : k_max_key});
        if (!next) {
            break;
        }
        from = *next;
    }
    return out;
}

bool usable_task(sqlite3_stmt* row) {
    return read_task(row).has_value();
}

bool usable_environment(sqlite3_stmt* row) {
    auto env = proto::parse_json_text(sqlite::column_text(row, 1));
    if (!env.is_object()) {
        return false;
    }
    return std::all_of(env.begin(), env.end(), [](const nlohmann::json& v) { return v.is_string(); });
}

bool usable_pool(sqlite3_stmt* row) {
    return !sqlite::column_text(row, 0).empty() && sqlite3_column_type(row, 1) == SQLITE_INTEGER &&
           sqlite3_column_int64(row, 1) >= 1;
}

bool usable_meta(sqlite3_stmt* row) {
    return !sqlite::column_text(row, 0).empty();
}

bool usable_segment(sqlite3_stmt* row) {
    // A name a segment can have (a start unlinks by it), the file's identity, and a lease it knows.
    std::string name = sqlite::column_text(row, 0);
    auto normal = common::shm::normalize_name(name);
    std::string lease = sqlite::column_text(row, 6);
    bool known_lease = lease.empty() || lease == "process" || lease == "connection" || lease == "ttl";
    return normal && *normal == name && known_lease && sqlite3_column_type(row, 1) == SQLITE_INTEGER &&
           sqlite3_column_type(row, 2) == SQLITE_INTEGER;
}

// A queue's or a dict's name as the manager gives them (1-64 letters, digits, '_', '-', '.').
bool usable_manager_name(const std::string& name) {
    return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
    });
}

// Values and versions are what the daemon wrote: JSON text, and versions from 1.
bool usable_json_column(sqlite3_stmt* row, int col) {
    return !proto::parse_json_text(sqlite::column_text(row, col)).is_discarded();
}

bool usable_queue(sqlite3_stmt* row) {
    return usable_manager_name(sqlite::column_text(row, 0)) &&
           sqlite3_column_type(row, 1) == SQLITE_INTEGER && sqlite3_column_int64(row, 1) >= 0;
}

bool usable_queue_item(sqlite3_stmt* row) {
    return sqlite3_column_type(row, 0) == SQLITE_INTEGER &&
           usable_manager_name(sqlite::column_text(row, 1)) && usable_json_column(row, 2);
}

bool usable_dict(sqlite3_stmt* row) {
    return usable_manager_name(sqlite::column_text(row, 0)) && sqlite3_column_type(row, 1) == SQLITE_INTEGER;
}

bool usable_token(sqlite3_stmt* row) {
    std::string hash = sqlite::column_text(row, 1);
    return usable_manager_name(sqlite::column_text(row, 0)) && hash.size() == 64 &&
           std::all_of(hash.begin(), hash.end(),
                       [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }) &&
           proto::parse_json_text(sqlite::column_text(row, 2)).is_array();
}

bool usable_dict_entry(sqlite3_stmt* row) {
    return usable_manager_name(sqlite::column_text(row, 0)) && !sqlite::column_text(row, 1).empty() &&
           usable_json_column(row, 2) && sqlite3_column_type(row, 3) == SQLITE_INTEGER;
}

}  // namespace

std::optional<int64_t> next_readable(int64_t failed_at, const std::function<Probe(int64_t)>& probe) {
    // Ahead by doubling steps until a probe reads (LO: the last key known to fail).
    int64_t lo = failed_at;
    int64_t hi = 0;
    for (int64_t step = 1;; step = step > k_max_key / 2 ? k_max_key : step * 2) {
        int64_t key = failed_at > k_max_key - step ? k_max_key : failed_at + step;
        if (probe(key) != Probe::failed) {
            hi = key;
            break;
        }
        if (key == k_max_key) {
            return std::nullopt;
        }
        lo = key;
    }
    // Back by halves: the smallest key in (LO, HI] that reads.
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (probe(mid) != Probe::failed) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    return hi;
}

int64_t TableSalvage::lost(int64_t bound) const {
    int64_t n = rejected;
    for (const KeyRange& r : unreadable) {
        int64_t last = std::min(r.last, bound);
        if (last >= r.first) {
            n += last - r.first + 1;
        }
    }
    return n;
}

common::Result<TableSalvage> salvage_tasks(sqlite3* source, sqlite3* target) {
    // The columns k_select_tasks_sql reads, in its order: read_task is the check.
    return copy_table(source, target,
                      {"tasks",
                       {{"id", "NULL"},
                        {"spec", "NULL"},
                        {"state", "NULL"},
                        {"reason", "NULL"},
                        {"exit_code", "NULL"},
                        {"signal", "NULL"},
                        {"submitted_at", "0"},
                        {"started_at", "NULL"},
                        {"finished_at", "NULL"},
                        {"attempts", "0"},
                        {"pid", "NULL"},
                        {"error", "NULL"},
                        {"env_id", "NULL"},
                        {"outcome", "NULL"},
                        {"pid_start", "NULL"}},
                       usable_task});
}

common::Result<TableSalvage> salvage_environments(sqlite3* source, sqlite3* target) {
    return copy_table(source, target,
                      {"environments", {{"id", "NULL"}, {"env", "NULL"}}, usable_environment});
}

common::Result<TableSalvage> salvage_pools(sqlite3* source, sqlite3* target) {
    return copy_table(
        source, target,
        {"pools",
         {{"name", "NULL"}, {"workers", "NULL"}, {"transient", "0"}, {"worker", "NULL"}, {"backend", "NULL"}},
         usable_pool});
}

common::Result<TableSalvage> salvage_meta(sqlite3* source, sqlite3* target) {
    return copy_table(source, target, {"meta", {{"key", "NULL"}, {"value", "NULL"}}, usable_meta});
}

common::Result<TableSalvage> salvage_segments(sqlite3* source, sqlite3* target) {
    return copy_table(source, target,
                      {"segments",
                       {{"name", "NULL"},
                        {"dev", "NULL"},
                        {"ino", "NULL"},
                        {"size", "NULL"},
                        {"mode", "NULL"},
                        {"created_at", "0"},
                        {"lease", "NULL"},
                        {"pid", "NULL"},
                        {"pid_start", "NULL"},
                        {"expires_at", "NULL"}},
                       usable_segment});
}

common::Result<std::vector<TableSalvage>> salvage_manager(sqlite3* source, sqlite3* target) {
    const TableCopy tables[] = {
        {"queues", {{"name", "NULL"}, {"maxsize", "NULL"}, {"created_at", "0"}}, usable_queue},
        {"queue_items", {{"seq", "NULL"}, {"queue", "NULL"}, {"value", "NULL"}}, usable_queue_item},
        {"dicts", {{"name", "NULL"}, {"version", "NULL"}}, usable_dict},
        {"dict_entries",
         {{"dict", "NULL"}, {"key", "NULL"}, {"value", "NULL"}, {"version", "NULL"}},
         usable_dict_entry},
        {"tokens",
         {{"name", "NULL"}, {"hash", "NULL"}, {"methods", "NULL"}, {"created_at", "0"}},
         usable_token},
    };
    std::vector<TableSalvage> out;
    for (const TableCopy& t : tables) {
        auto copied = copy_table(source, target, t);
        if (!copied) {
            return std::unexpected(copied.error());
        }
        out.push_back(std::move(*copied));
    }
    return out;
}

}  // namespace mpctl::daemon
