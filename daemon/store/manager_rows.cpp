#include <map>

#include <sqlite3.h>

#include <mpctl/daemon/store/manager_rows.hpp>
#include <mpctl/daemon/store/sqlite_util.hpp>

namespace mpctl::daemon {

namespace {

enum Statement {
    put_queue,
    delete_queue_items,
    delete_queue,
    insert_item,
    delete_item,
    set_entry,
    delete_entry,
    raise_dict_version,
    put_token,
    delete_token,
};

void bind_text(sqlite3_stmt* s, int index, const std::string& text) {
    sqlite3_bind_text(s, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

}  // namespace

ManagerStatements::~ManagerStatements() {
    for (sqlite3_stmt* s : stmts_) {
        sqlite3_finalize(s);
    }
}

common::Result<sqlite3_stmt*> ManagerStatements::statement(sqlite3* db, int which, const char* sql) {
    if (stmts_[which] == nullptr) {
        auto prepared = sqlite::prepare(db, sql);
        if (!prepared) {
            return std::unexpected(prepared.error());
        }
        stmts_[which] = *prepared;
    }
    sqlite3_reset(stmts_[which]);
    sqlite3_clear_bindings(stmts_[which]);
    return stmts_[which];
}

common::Result<void> ManagerStatements::apply(sqlite3* db, const ManagerWrite& w) {
    // Steps S (bound by BIND) once; an Error naming WHAT if it fails.
    auto run = [&](int which, const char* sql, const auto& bind, const char* what) -> common::Result<void> {
        auto s = statement(db, which, sql);
        if (!s) {
            return std::unexpected(s.error());
        }
        bind(*s);
        if (sqlite3_step(*s) != SQLITE_DONE) {
            return std::unexpected(sqlite::error(db, std::string(what) + " " + w.name));
        }
        sqlite3_reset(*s);
        return {};
    };
    switch (w.kind) {
        case ManagerWrite::Kind::delete_queue: {
            auto bind = [&](sqlite3_stmt* s) {
                bind_text(s, 1, w.name);
            };
            if (auto r = run(delete_queue_items, "DELETE FROM queue_items WHERE queue = ?1", bind,
                             "delete the values of queue");
                !r) {
                return r;
            }
            return run(delete_queue, "DELETE FROM queues WHERE name = ?1", bind, "delete queue");
        }
        case ManagerWrite::Kind::insert_items:
            // The queue's row with its first values (a later put's finds it there): no row without values
            // that a failed first put would leave, and no value without its row.
            if (auto r = !w.queue_row
                             ? common::Result<void>{}
                             : run(
                                   put_queue,
                                   "INSERT INTO queues (name, maxsize, created_at) VALUES (?1, ?2, ?3) "
                                   "ON CONFLICT(name) DO NOTHING",
                                   [&](sqlite3_stmt* s) {
                                       bind_text(s, 1, w.name);
                                       sqlite3_bind_int64(s, 2, w.maxsize);
                                       sqlite3_bind_int64(s, 3, w.created_at_ms);
                                   },
                                   "write queue");
                !r) {
                return r;
            }
            for (const auto& [seq, value] : w.items) {
                if (auto r = run(
                        insert_item,
                        "INSERT OR REPLACE INTO queue_items (seq, queue, value) VALUES (?2, ?1, ?3)",
                        [&](sqlite3_stmt* s) {
                            bind_text(s, 1, w.name);
                            sqlite3_bind_int64(s, 2, seq);
                            bind_text(s, 3, value);
                        },
                        "write a value of queue");
                    !r) {
                    return r;
                }
            }
            return {};
        case ManagerWrite::Kind::delete_items:
            for (int64_t seq : w.seqs) {
                if (auto r = run(
                        delete_item, "DELETE FROM queue_items WHERE seq = ?2",
                        [&](sqlite3_stmt* s) {
                            bind_text(s, 1, w.name);
                            sqlite3_bind_int64(s, 2, seq);
                        },
                        "delete a value of queue");
                    !r) {
                    return r;
                }
            }
            return {};
        case ManagerWrite::Kind::kv_set:
        case ManagerWrite::Kind::kv_delete: {
            common::Result<void> r;
            if (w.kind == ManagerWrite::Kind::kv_set) {
                r = run(
                    set_entry,
                    "INSERT INTO dict_entries (dict, key, value, version) VALUES (?1, ?2, ?3, ?4) "
                    "ON CONFLICT(dict, key) DO UPDATE SET value = ?3, version = ?4",
                    [&](sqlite3_stmt* s) {
                        bind_text(s, 1, w.name);
                        bind_text(s, 2, w.key);
                        bind_text(s, 3, w.value);
                        sqlite3_bind_int64(s, 4, w.version);
                    },
                    "write a key of dict");
            } else {
                r = run(
                    delete_entry, "DELETE FROM dict_entries WHERE dict = ?1 AND key = ?2",
                    [&](sqlite3_stmt* s) {
                        bind_text(s, 1, w.name);
                        bind_text(s, 2, w.key);
                    },
                    "delete a key of dict");
            }
            if (!r) {
                return r;
            }
            // The dict's version outlives its keys: a delete's version is never given again.
            return run(
                raise_dict_version,
                "INSERT INTO dicts (name, version) VALUES (?1, ?2) "
                "ON CONFLICT(name) DO UPDATE SET version = max(version, ?2)",
                [&](sqlite3_stmt* s) {
                    bind_text(s, 1, w.name);
                    sqlite3_bind_int64(s, 2, w.version);
                },
                "write the version of dict");
        }
        case ManagerWrite::Kind::put_token:
            return run(
                Statement::put_token,
                "INSERT INTO tokens (name, hash, methods, created_at) VALUES (?1, ?2, ?3, ?4)",
                [&](sqlite3_stmt* s) {
                    bind_text(s, 1, w.name);
                    bind_text(s, 2, w.key);
                    bind_text(s, 3, w.value);
                    sqlite3_bind_int64(s, 4, w.created_at_ms);
                },
                "write token");
        case ManagerWrite::Kind::delete_token:
            return run(
                Statement::delete_token, "DELETE FROM tokens WHERE name = ?1",
                [&](sqlite3_stmt* s) { bind_text(s, 1, w.name); }, "delete token");
        case ManagerWrite::Kind::read_dict: {
            // A read never fails the transaction it shares with other clients' writes: its reader hears
            // that it could not read (read_into stays empty, version -1).
            auto row = load_dict_row(db, w.name);
            if (row) {
                *w.read_into = std::move(*row);
            } else {
                w.read_into->version = -1;
            }
            return {};
        }
    }
    return {};
}

common::Result<std::vector<QueueRow>> load_queue_rows(sqlite3* db) {
    std::vector<QueueRow> queues;
    {
        sqlite::Query q(db, "SELECT name, maxsize, created_at FROM queues ORDER BY name");
        if (!q.ok()) {
            return std::unexpected(sqlite::error(db, "reading queues"));
        }
        int rc = 0;
        while ((rc = q.step()) == SQLITE_ROW) {
            queues.push_back({sqlite::column_text(q.get(), 0),
                              sqlite3_column_int64(q.get(), 1),
                              sqlite3_column_int64(q.get(), 2),
                              {}});
        }
        if (rc != SQLITE_DONE) {
            return std::unexpected(sqlite::error(db, "reading queues"));
        }
    }
    // One pass in seq order: a value goes to its queue's end.
    std::map<std::string, QueueRow*> by_name;
    for (QueueRow& queue : queues) {
        by_name[queue.name] = &queue;
    }
    sqlite::Query items(db, "SELECT queue, seq, value FROM queue_items ORDER BY seq");
    if (!items.ok()) {
        return std::unexpected(sqlite::error(db, "reading the values of queues"));
    }
    int rc = 0;
    while ((rc = items.step()) == SQLITE_ROW) {
        auto queue = by_name.find(sqlite::column_text(items.get(), 0));
        if (queue != by_name.end()) {
            queue->second->items.emplace_back(sqlite3_column_int64(items.get(), 1),
                                              sqlite::column_text(items.get(), 2));
        }
    }
    if (rc != SQLITE_DONE) {
        return std::unexpected(sqlite::error(db, "reading the values of queues"));
    }
    return queues;
}

namespace {

// Reads the entries of DICT into it with ENTRIES (a query of one parameter, the dict's name).
common::Result<void> read_entries(sqlite3* db, sqlite3_stmt* entries, DictRow& dict) {
    sqlite3_reset(entries);
    bind_text(entries, 1, dict.name);
    int rc = 0;
    while ((rc = sqlite3_step(entries)) == SQLITE_ROW) {
        dict.entries.push_back({sqlite::column_text(entries, 0), sqlite::column_text(entries, 1),
                                sqlite3_column_int64(entries, 2)});
        dict.version = std::max(dict.version, dict.entries.back().version);
    }
    if (rc != SQLITE_DONE) {
        return std::unexpected(sqlite::error(db, "reading the keys of dict " + dict.name));
    }
    return {};
}

constexpr const char* k_select_entries =
    "SELECT key, value, version FROM dict_entries WHERE dict = ?1 ORDER BY key";

}  // namespace

common::Result<DictRow> load_dict_row(sqlite3* db, const std::string& name) {
    DictRow dict{name, 0, {}};
    sqlite::Query q(db, "SELECT version FROM dicts WHERE name = ?1");
    sqlite::Query entries(db, k_select_entries);
    if (!q.ok() || !entries.ok()) {
        return std::unexpected(sqlite::error(db, "reading dict " + name));
    }
    bind_text(q.get(), 1, name);
    if (q.step() == SQLITE_ROW) {
        dict.version = sqlite3_column_int64(q.get(), 0);
    }
    if (auto r = read_entries(db, entries.get(), dict); !r) {
        return std::unexpected(r.error());
    }
    return dict;
}

common::Result<std::vector<DictRow>> load_dict_rows(sqlite3* db) {
    std::vector<DictRow> dicts;
    {
        sqlite::Query q(db, "SELECT name, version FROM dicts ORDER BY name");
        if (!q.ok()) {
            return std::unexpected(sqlite::error(db, "reading dicts"));
        }
        int rc = 0;
        while ((rc = q.step()) == SQLITE_ROW) {
            dicts.push_back({sqlite::column_text(q.get(), 0), sqlite3_column_int64(q.get(), 1), {}});
        }
        if (rc != SQLITE_DONE) {
            return std::unexpected(sqlite::error(db, "reading dicts"));
        }
    }
    sqlite::Query entries(db, k_select_entries);
    if (!entries.ok()) {
        return std::unexpected(sqlite::error(db, "reading the keys of dicts"));
    }
    for (DictRow& dict : dicts) {
        if (auto r = read_entries(db, entries.get(), dict); !r) {
            return std::unexpected(r.error());
        }
    }
    return dicts;
}

common::Result<std::vector<TokenRow>> load_token_rows(sqlite3* db) {
    std::vector<TokenRow> rows;
    sqlite::Query q(db, "SELECT name, hash, methods, created_at FROM tokens ORDER BY name");
    if (!q.ok()) {
        return std::unexpected(sqlite::error(db, "reading tokens"));
    }
    int rc = 0;
    while ((rc = q.step()) == SQLITE_ROW) {
        rows.push_back({sqlite::column_text(q.get(), 0), sqlite::column_text(q.get(), 1),
                        sqlite::column_text(q.get(), 2), sqlite3_column_int64(q.get(), 3)});
    }
    if (rc != SQLITE_DONE) {
        return std::unexpected(sqlite::error(db, "reading tokens"));
    }
    return rows;
}

}  // namespace mpctl::daemon
