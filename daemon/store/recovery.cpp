#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <optional>
#include <unistd.h>

#include <sqlite3.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/common/time.hpp>
#include <mpctl/daemon/store/recovery.hpp>
#include <mpctl/daemon/store/schema.hpp>
#include <mpctl/daemon/store/sqlite_util.hpp>

namespace mpctl::daemon {

namespace {

// The files that make up a journal besides itself; each moves with it, under the same suffix.
constexpr const char* k_companions[] = {"-wal", "-shm", "-journal"};

// The one integer SQL returns, if it returns one.
std::optional<int64_t> query_int(sqlite3* db, const char* sql) {
    sqlite::Query q(db, sql);
    if (!q.ok() || q.step() != SQLITE_ROW || sqlite3_column_type(q.get(), 0) == SQLITE_NULL) {
        return std::nullopt;
    }
    return sqlite3_column_int64(q.get(), 0);
}

bool exists(const std::string& path) {
    return ::access(path.c_str(), F_OK) == 0;
}

common::Result<void> remove_if_there(const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return common::sys_error("remove " + path);
    }
    return {};
}

common::Result<void> sync_directory_of(const std::string& path) {
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    auto fd = common::open_cloexec(dir, O_RDONLY | O_DIRECTORY);
    if (!fd) {
        return std::unexpected(fd.error());
    }
    if (::fsync(fd->get()) != 0) {
        return common::sys_error("fsync " + dir);
    }
    return {};
}

// The lowest id new rows of a table may take: above every key it read, every key a range it could not
// read ends before (those rows may have existed), and what else is known (HINTS).
int64_t high_water(const TableSalvage& t, std::initializer_list<std::optional<int64_t>> hints) {
    int64_t next = std::max<int64_t>(1, t.highest_key + 1);
    for (const KeyRange& r : t.unreadable) {
        if (r.last != std::numeric_limits<int64_t>::max()) {
            next = std::max(next, r.last + 1);
        }
    }
    for (const auto& h : hints) {
        if (h) {
            next = std::max(next, *h);
        }
    }
    return next;
}

common::Result<void> write_meta(sqlite3* db, const char* key, int64_t value) {
    sqlite::Query q(db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db, "write meta"));
    }
    sqlite3_bind_text(q.get(), 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q.get(), 2, std::to_string(value).c_str(), -1, SQLITE_TRANSIENT);
    if (q.step() != SQLITE_DONE) {
        return std::unexpected(sqlite::error(db, std::string("write meta ") + key));
    }
    return {};
}

// Reads SOURCE into the fresh journal TARGET, in one transaction, and fills REPORT's tables and ids.
common::Result<void> salvage_into(sqlite3* source, sqlite3* target, int64_t min_next_task_id,
                                  RecoveryReport& report) {
    if (auto r = migrate(target); !r) {
        return r;
    }
    if (auto r = sqlite::exec(target, "BEGIN IMMEDIATE"); !r) {
        return r;
    }
    if (!query_int(source, "SELECT count(*) FROM sqlite_schema")) {
        report.unreadable_schema = sqlite3_errmsg(source);
    }
    for (auto [into, salvage] :
         {std::pair{&report.tasks, &salvage_tasks}, std::pair{&report.environments, &salvage_environments},
          std::pair{&report.pools, &salvage_pools}, std::pair{&report.meta, &salvage_meta},
          std::pair{&report.segments, &salvage_segments}}) {
        auto table = salvage(source, target);
        if (!table) {
            (void)sqlite::exec(target, "ROLLBACK");
            return std::unexpected(table.error());
        }
        *into = std::move(*table);
    }
    auto manager = salvage_manager(source, target);
    if (!manager) {
        (void)sqlite::exec(target, "ROLLBACK");
        return std::unexpected(manager.error());
    }
    report.manager = std::move(*manager);
    // The old journal's own high-water marks, where its right edge still reads.
    report.next_task_id =
        high_water(report.tasks,
                   {min_next_task_id, query_int(source, "SELECT max(id) + 1 FROM tasks"),
                    query_int(source, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'next_task_id'")});
    report.next_environment_id = high_water(
        report.environments,
        {query_int(source, "SELECT max(id) + 1 FROM environments"),
         query_int(source, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'next_environment_id'"),
         query_int(target, "SELECT max(env_id) + 1 FROM tasks")});
    for (auto [key, value] : {std::pair{"next_task_id", report.next_task_id},
                              std::pair{"next_environment_id", report.next_environment_id}}) {
        if (auto r = write_meta(target, key, value); !r) {
            (void)sqlite::exec(target, "ROLLBACK");
            return r;
        }
    }
    if (auto r = sqlite::exec(target, "COMMIT"); !r) {
        (void)sqlite::exec(target, "ROLLBACK");
        return r;
    }
    return {};
}

// Salvages the damaged journal at PATH (opened read-only) into a fresh one at FRESH.
common::Result<void> build_fresh(const std::string& path, const std::string& fresh, int64_t min_next_task_id,
                                 RecoveryReport& report) {
    // Without a checkpoint at close: the damaged journal is opened read-only.
    auto source = sqlite::open(path, SQLITE_OPEN_READONLY, 5000);
    if (!source) {
        return std::unexpected(source.error());
    }
    if (auto version = query_int(source->get(), "PRAGMA user_version");
        version && *version > schema_version()) {
        return common::plain_error("journal " + path + " was written by a newer mpctld (schema " +
                                   std::to_string(*version) + "); recover it with that one");
    }
    auto target = sqlite::open(fresh, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 5000);
    if (!target) {
        return std::unexpected(target.error());
    }
    if (auto r = salvage_into(source->get(), target->get(), min_next_task_id, report); !r) {
        return common::plain_error("building a fresh journal at " + fresh + ": " + r.error().message());
    }
    return {};
}

}  // namespace

std::string aside_name(const std::string& path, int64_t unix_ms, int attempt) {
    std::string name = path + ".corrupt-" + common::format_compact_utc(unix_ms);
    return attempt > 1 ? name + "-" + std::to_string(attempt) : name;
}

common::Result<RecoveryReport> recover_journal(const std::string& path, int64_t min_next_task_id,
                                               int64_t unix_ms) {
    RecoveryReport report;
    report.path = path;
    const std::string fresh = path + ".recovering";
    const std::vector<std::string> fresh_files{fresh, fresh + "-journal", fresh + "-wal", fresh + "-shm"};
    // What an earlier recovery that did not finish left behind (never the journal itself).
    for (const std::string& f : fresh_files) {
        if (auto r = remove_if_there(f); !r) {
            return std::unexpected(r.error());
        }
    }
    // A read-only connection creates the WAL and its index when they are not there: those are ours to
    // remove again, not the damaged journal's.
    std::vector<std::string> ours;
    for (const char* suffix : k_companions) {
        if (!exists(path + suffix)) {
            ours.push_back(path + suffix);
        }
    }
    auto built = build_fresh(path, fresh, min_next_task_id, report);
    for (const std::string& f : ours) {
        (void)remove_if_there(f);
    }
    if (!built) {
        for (const std::string& f : fresh_files) {
            (void)remove_if_there(f);
        }
        return common::plain_error(built.error().message() + "; nothing was moved");
    }

    std::string aside;
    for (int attempt = 1;; ++attempt) {
        aside = aside_name(path, unix_ms, attempt);
        bool taken = exists(aside);
        for (const char* suffix : k_companions) {
            taken = taken || exists(aside + suffix);
        }
        if (!taken) {
            break;
        }
    }
    report.moved_to = aside;
    // The journal first: its WAL must never be left beside a fresh journal of the same name, which would
    // read the old pages in.
    if (::rename(path.c_str(), aside.c_str()) != 0) {
        return common::sys_error("move " + path + " to " + aside + " (nothing was moved)");
    }
    report.moved.push_back(aside);
    auto halfway = [&](const std::string& what) {
        return common::plain_error(what + ": " + std::strerror(errno) + "; the damaged journal is at " +
                                   aside + ", the salvaged one at " + fresh);
    };
    for (const char* suffix : k_companions) {
        if (!exists(path + suffix)) {
            continue;
        }
        if (::rename((path + suffix).c_str(), (aside + suffix).c_str()) != 0) {
            return halfway("move " + path + suffix + " to " + aside + suffix);
        }
        report.moved.push_back(aside + suffix);
    }
    if (::rename(fresh.c_str(), path.c_str()) != 0) {
        return halfway("move " + fresh + " to " + path);
    }
    if (auto r = sync_directory_of(path); !r) {
        return std::unexpected(r.error());
    }
    return report;
}

namespace {

// "ids 301-488, 2001-2006": the unreadable ranges of T at or below BOUND (the end of the table: none).
std::string ranges_text(const TableSalvage& t, std::optional<int64_t> bound, const char* keys) {
    constexpr size_t k_quoted = 3;
    std::vector<std::string> parts;
    size_t more = 0;
    for (const KeyRange& r : t.unreadable) {
        if (bound && r.first > *bound) {
            continue;
        }
        if (parts.size() == k_quoted) {
            ++more;
            continue;
        }
        bool to_end = r.last == std::numeric_limits<int64_t>::max();
        int64_t last = bound ? std::min(r.last, *bound) : r.last;
        std::string part = std::to_string(r.first);
        if (to_end && !bound) {
            part = "from " + part + " on";
        } else if (last != r.first) {
            part += "-" + std::to_string(last);
        }
        parts.push_back(std::move(part));
    }
    if (parts.empty()) {
        return {};
    }
    std::string text = std::string(keys) + " ";
    for (size_t i = 0; i < parts.size(); ++i) {
        text += (i == 0 ? "" : ", ") + parts[i];
    }
    if (more > 0) {
        text += " and " + std::to_string(more) + " more ranges";
    }
    return text;
}

// "1995 tasks (at most 11 lost: ids 1001-1011 could not be read)". BOUND: the highest key the table can
// have held, if known; without it a loss can only be told as a range.
std::string table_text(const TableSalvage& t, const std::string& noun, std::optional<int64_t> bound,
                       const char* keys) {
    std::string text = std::to_string(t.copied) + " " + noun + (t.copied == 1 ? "" : "s");
    std::string ranges = ranges_text(t, bound, keys);
    if (ranges.empty()) {
        return text + (t.rejected == 0 ? " (none lost)" : " (" + std::to_string(t.rejected) + " lost)");
    }
    std::string lost = bound ? "at most " + std::to_string(t.lost(*bound)) + " lost" : "some lost";
    return text + " (" + lost + ": " + ranges + " could not be read)";
}

}  // namespace

std::vector<std::string> describe(const RecoveryReport& report) {
    std::vector<std::string> lines;
    std::string moved = "moved the damaged journal " + report.path + " to " + report.moved_to;
    if (report.moved.size() > 1) {
        moved += " (with its";
        for (size_t i = 1; i < report.moved.size(); ++i) {
            moved += std::string(i == 1 ? " " : ", ") + report.moved[i].substr(report.moved_to.size());
        }
        moved += ")";
    }
    lines.push_back(moved + "; it is kept as it was");
    if (!report.unreadable_schema.empty()) {
        lines.push_back("nothing could be read from it (" + report.unreadable_schema +
                        "): starting with an empty journal");
    } else {
        std::string salvaged =
            "salvaged " + table_text(report.tasks, "task", report.next_task_id - 1, "ids") + ", " +
            table_text(report.pools, "pool", std::nullopt, "rows") + ", " +
            table_text(report.environments, "environment", report.next_environment_id - 1, "ids") + ", " +
            table_text(report.segments, "shared-memory segment", std::nullopt, "rows");
        std::vector<const TableSalvage*> tables{&report.tasks, &report.pools, &report.environments,
                                                &report.meta, &report.segments};
        if (report.manager.size() >= 4) {
            salvaged += ", " + table_text(report.manager[1], "queue value", std::nullopt, "rows") + ", " +
                        table_text(report.manager[3], "dict key", std::nullopt, "rows");
        }
        for (const auto& t : report.manager) {
            tables.push_back(&t);
        }
        for (const TableSalvage* t : tables) {
            if (t->error) {
                salvaged += "; SQLite said: " + *t->error;
                break;
            }
        }
        lines.push_back(salvaged);
    }
    lines.push_back("new tasks get ids from " + std::to_string(report.next_task_id) +
                    " on: no id the damaged journal or the tasks' output files show is handed out again");
    return lines;
}

}  // namespace mpctl::daemon
