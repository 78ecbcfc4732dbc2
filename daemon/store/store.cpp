// Store: opening the journal, and turning writes into JournalOps and groups of them into transactions.

#include <map>

#include <asio/post.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <mpctl/daemon/store/integrity.hpp>
#include <mpctl/daemon/store/schema.hpp>
#include <mpctl/daemon/store/sqlite_util.hpp>
#include <mpctl/daemon/store/store.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

Store::Store(sqlite3* db, std::string path, Durability durability)
    : db_(db),
      path_(std::move(path)),
      durability_(durability),
      commits_(durability, [this](std::vector<JournalOp>& batch) { return apply(batch); }),
      checkpointer_(path_) {}

Store::~Store() {
    stop();
    for (sqlite3_stmt* stmt : {stmts_.insert_task, stmts_.update_task, stmts_.set_pool, stmts_.drop_pool,
                               stmts_.insert_env, stmts_.begin, stmts_.commit, stmts_.rollback}) {
        sqlite3_finalize(stmt);
    }
    sqlite3_close_v2(db_);
}

common::Result<std::unique_ptr<Store>> Store::open(const std::string& path, Durability durability) {
    auto opened = sqlite::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 5000);
    if (!opened) {
        return common::plain_error("journal: " + opened.error().message());
    }
    sqlite3* db = opened->release();  // the Store closes it
    // Closing without a checkpoint until start(): a journal found damaged below (or by the start-up reads)
    // stays as it was, its WAL beside it, for `mpctld --recover` or a person to look at.
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    std::unique_ptr<Store> store(new Store(db, path, durability));
    auto in_journal = [&](const common::Error& e) {
        return common::plain_error("journal " + path + ": " + e.message(), e.code);
    };
    if (auto r = configure_connection(db, durability); !r) {
        return in_journal(r.error());
    }
    // Before the migrations, which would write to a damaged file.
    if (auto r = check_integrity(db); !r) {
        return in_journal(r.error());
    }
    if (auto r = migrate(db); !r) {
        return in_journal(r.error());
    }
    Statements& s = store->stmts_;
    const std::pair<sqlite3_stmt**, const char*> statements[] = {
        {&s.insert_task, k_insert_task_sql},
        {&s.update_task, k_update_task_sql},
        {&s.insert_env, "INSERT OR IGNORE INTO environments (id, env) VALUES (?1, ?2)"},
        {&s.set_pool,
         "INSERT INTO pools (name, workers, transient, worker, backend) VALUES (?1, ?2, ?3, ?4, ?5) "
         "ON CONFLICT(name) DO UPDATE SET workers = ?2, transient = ?3, worker = ?4, backend = ?5"},
        {&s.drop_pool, "DELETE FROM pools WHERE name = ?1 AND transient = 1"},
        {&s.begin, "BEGIN IMMEDIATE"},
        {&s.commit, "COMMIT"},
        {&s.rollback, "ROLLBACK"},
    };
    for (const auto& [stmt, sql] : statements) {
        auto prepared = sqlite::prepare(db, sql);
        if (!prepared) {
            return std::unexpected(prepared.error());
        }
        *stmt = *prepared;
    }
    return store;
}

void Store::start(asio::io_context& loop) {
    sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
    commits_.start(loop);
    if (durability_ == Durability::normal) {
        checkpointer_.watch(db_);
    }
}

void Store::stop() {
    checkpointer_.stop();
    commits_.stop();
}

void Store::insert_tasks(const std::vector<const Task*>& tasks,
                         const std::vector<Environments::Entry>& new_environments, Done done) {
    std::vector<JournalOp> ops;
    ops.reserve(tasks.size() + new_environments.size());
    for (const auto& e : new_environments) {
        JournalOp op{JournalOp::Kind::insert_environment, {}, {}, 0, false, nullptr};
        op.row.id = e.id;
        op.row.spec = proto::dump_json(nlohmann::json(*e.env));
        ops.push_back(std::move(op));
    }
    for (const Task* task : tasks) {
        ops.push_back(JournalOp{JournalOp::Kind::insert_task, row_of(*task, true), {}, 0, false, nullptr});
    }
    if (ops.empty()) {
        return;
    }
    // Only the last op carries the completion: the whole group goes into one transaction.
    ops.back().done = std::move(done);
    commits_.enqueue(std::move(ops));
}

void Store::update_task(const Task& task) {
    std::vector<JournalOp> ops;
    ops.push_back(JournalOp{JournalOp::Kind::update_task, row_of(task), {}, 0, false, nullptr});
    commits_.enqueue(std::move(ops));
}

void Store::after_commits(Done done, bool may_group) {
    std::vector<JournalOp> ops;
    ops.push_back(JournalOp{JournalOp::Kind::barrier, {}, {}, 0, false, std::move(done)});
    commits_.enqueue(std::move(ops), may_group);
}

void Store::set_pool(const std::string& name, int workers, Done done, bool transient, std::string worker,
                     std::string backend) {
    std::vector<JournalOp> ops;
    ops.push_back(JournalOp{JournalOp::Kind::set_pool, {}, name, workers, transient, std::move(done)});
    ops.back().worker = std::move(worker);
    ops.back().backend = std::move(backend);
    commits_.enqueue(std::move(ops));
}

void Store::drop_transient_pool(const std::string& name) {
    std::vector<JournalOp> ops;
    ops.push_back(JournalOp{JournalOp::Kind::drop_pool, {}, name, 0, false, nullptr});
    commits_.enqueue(std::move(ops));
}

void Store::delete_pool(const std::string& name, Done done) {
    std::vector<JournalOp> ops;
    ops.push_back(JournalOp{JournalOp::Kind::delete_pool, {}, name, 0, false, std::move(done)});
    commits_.enqueue(std::move(ops));
}

void Store::delete_tasks(const std::vector<int64_t>& ids, Done done) {
    std::vector<JournalOp> ops;
    ops.reserve(ids.size());
    for (int64_t id : ids) {
        JournalOp op{JournalOp::Kind::delete_task, {}, {}, 0, false, nullptr};
        op.row.id = id;
        ops.push_back(std::move(op));
    }
    if (ops.empty()) {
        done({});
        return;
    }
    ops.back().done = std::move(done);
    commits_.enqueue(std::move(ops));
}

void Store::put_segment(const SegmentRow& row, Done done) {
    JournalOp op{JournalOp::Kind::put_segment, {}, {}, 0, false, std::move(done)};
    op.segment = std::make_shared<const SegmentRow>(row);
    std::vector<JournalOp> ops;
    ops.push_back(std::move(op));
    commits_.enqueue(std::move(ops));
}

void Store::delete_segment(const std::string& name) {
    std::vector<JournalOp> ops;
    ops.push_back(JournalOp{JournalOp::Kind::delete_segment, {}, name, 0, false, nullptr});
    commits_.enqueue(std::move(ops));
}

void Store::raise_meta(const std::string& key, int64_t value, Done done) {
    JournalOp op{JournalOp::Kind::raise_meta, {}, key, 0, false, std::move(done)};
    op.row.id = value;
    std::vector<JournalOp> ops;
    ops.push_back(std::move(op));
    commits_.enqueue(std::move(ops));
}

void Store::read_environments(const std::vector<int64_t>& ids,
                              std::function<void(common::Result<EnvironmentsRead>)> done) {
    if (ids.empty()) {
        done(EnvironmentsRead{});
        return;
    }
    auto texts = std::make_shared<std::map<int64_t, std::string>>();
    std::vector<JournalOp> ops;
    for (int64_t id : ids) {
        JournalOp op{JournalOp::Kind::read_environment, {}, {}, 0, false, nullptr};
        op.row.id = id;
        op.read_into = texts;
        ops.push_back(std::move(op));
    }
    ops.back().done = [ids, texts, done = std::move(done)](common::Result<void> r) {
        if (!r) {
            done(std::unexpected(r.error()));
            return;
        }
        EnvironmentsRead envs;
        for (int64_t id : ids) {
            auto it = texts->find(id);
            if (it == texts->end()) {
                done(common::plain_error("environment " + std::to_string(id) + " is not in the journal"));
                return;
            }
            auto parsed = proto::parse_json_text(it->second);
            try {
                if (parsed.is_discarded()) {
                    throw std::runtime_error("not JSON");
                }
                envs.emplace(id,
                             std::make_shared<const proto::Environment>(parsed.get<proto::Environment>()));
            } catch (const std::exception& e) {
                done(common::plain_error("environment " + std::to_string(id) +
                                         " in the journal: " + e.what()));
                return;
            }
        }
        done(std::move(envs));
    };
    commits_.enqueue(std::move(ops));
}

void Store::write(std::vector<std::shared_ptr<const ManagerWrite>> writes, Done done) {
    std::vector<JournalOp> ops;
    ops.reserve(writes.size());
    for (auto& w : writes) {
        JournalOp op{JournalOp::Kind::manager, {}, {}, 0, false, nullptr};
        op.manager = std::move(w);
        ops.push_back(std::move(op));
    }
    if (ops.empty()) {
        done({});
        return;
    }
    ops.back().done = std::move(done);
    commits_.enqueue(std::move(ops));
}

common::Result<void> Store::apply_one(const JournalOp& op) {
    switch (op.kind) {
        case JournalOp::Kind::manager:
            return manager_stmts_.apply(db_, *op.manager);
        case JournalOp::Kind::insert_environment:
            sqlite3_reset(stmts_.insert_env);
            sqlite3_bind_int64(stmts_.insert_env, 1, op.row.id);
            sqlite3_bind_text(stmts_.insert_env, 2, op.row.spec.c_str(), static_cast<int>(op.row.spec.size()),
                              SQLITE_STATIC);
            if (sqlite3_step(stmts_.insert_env) != SQLITE_DONE) {
                return std::unexpected(sqlite::error(db_, "write environment " + std::to_string(op.row.id)));
            }
            return {};
        case JournalOp::Kind::insert_task:
            return write_task_row(db_, stmts_.insert_task, op.row, true);
        case JournalOp::Kind::update_task:
            return write_task_row(db_, stmts_.update_task, op.row, false);
        case JournalOp::Kind::set_pool:
            sqlite3_reset(stmts_.set_pool);
            sqlite3_bind_text(stmts_.set_pool, 1, op.pool.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(stmts_.set_pool, 2, op.workers);
            sqlite3_bind_int(stmts_.set_pool, 3, op.transient ? 1 : 0);
            if (op.worker.empty()) {
                sqlite3_bind_null(stmts_.set_pool, 4);
            } else {
                sqlite3_bind_text(stmts_.set_pool, 4, op.worker.c_str(), -1, SQLITE_TRANSIENT);
            }
            if (op.backend.empty()) {
                sqlite3_bind_null(stmts_.set_pool, 5);
            } else {
                sqlite3_bind_text(stmts_.set_pool, 5, op.backend.c_str(), -1, SQLITE_TRANSIENT);
            }
            if (sqlite3_step(stmts_.set_pool) != SQLITE_DONE) {
                return std::unexpected(sqlite::error(db_, "write pool " + op.pool));
            }
            return {};
        case JournalOp::Kind::delete_task: {
            // Rare (a user's clean): prepared here rather than kept.
            sqlite::Query del(db_, "DELETE FROM tasks WHERE id = ?1");
            sqlite::Query mark(
                db_,
                "INSERT INTO meta (key, value) VALUES ('next_task_id', ?1) ON CONFLICT(key) DO "
                "UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))");
            if (!del.ok() || !mark.ok()) {
                return std::unexpected(sqlite::error(db_, "delete task " + std::to_string(op.row.id)));
            }
            sqlite3_bind_int64(del.get(), 1, op.row.id);
            sqlite3_bind_int64(mark.get(), 1, op.row.id + 1);
            if (del.step() != SQLITE_DONE || mark.step() != SQLITE_DONE) {
                return std::unexpected(sqlite::error(db_, "delete task " + std::to_string(op.row.id)));
            }
            return {};
        }
        case JournalOp::Kind::delete_pool: {
            sqlite::Query del(db_, "DELETE FROM pools WHERE name = ?1");
            if (!del.ok()) {
                return std::unexpected(sqlite::error(db_, "delete pool " + op.pool));
            }
            sqlite3_bind_text(del.get(), 1, op.pool.c_str(), -1, SQLITE_TRANSIENT);
            if (del.step() != SQLITE_DONE) {
                return std::unexpected(sqlite::error(db_, "delete pool " + op.pool));
            }
            return {};
        }
        case JournalOp::Kind::put_segment: {
            const SegmentRow& r = *op.segment;
            sqlite::Query q(
                db_,
                "INSERT OR REPLACE INTO segments (name, dev, ino, size, mode, created_at, lease, pid, "
                "pid_start, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
            if (!q.ok()) {
                return std::unexpected(sqlite::error(db_, "write segment " + r.name));
            }
            sqlite3_bind_text(q.get(), 1, r.name.c_str(), static_cast<int>(r.name.size()), SQLITE_TRANSIENT);
            sqlite3_bind_int64(q.get(), 2, static_cast<int64_t>(r.dev));
            sqlite3_bind_int64(q.get(), 3, static_cast<int64_t>(r.ino));
            sqlite3_bind_int64(q.get(), 4, static_cast<int64_t>(r.size));
            sqlite3_bind_int64(q.get(), 5, r.mode);
            sqlite3_bind_int64(q.get(), 6, r.created_at_ms);
            if (r.lease.empty()) {
                sqlite3_bind_null(q.get(), 7);
            } else {
                sqlite3_bind_text(q.get(), 7, r.lease.c_str(), -1, SQLITE_TRANSIENT);
            }
            sqlite3_bind_int64(q.get(), 8, r.pid);
            sqlite3_bind_int64(q.get(), 9, static_cast<int64_t>(r.pid_start));
            sqlite3_bind_int64(q.get(), 10, r.expires_at_ms);
            if (q.step() != SQLITE_DONE) {
                return std::unexpected(sqlite::error(db_, "write segment " + r.name));
            }
            return {};
        }
        case JournalOp::Kind::delete_segment: {
            sqlite::Query q(db_, "DELETE FROM segments WHERE name = ?1");
            if (!q.ok()) {
                return std::unexpected(sqlite::error(db_, "delete segment " + op.pool));
            }
            sqlite3_bind_text(q.get(), 1, op.pool.c_str(), static_cast<int>(op.pool.size()),
                              SQLITE_TRANSIENT);
            if (q.step() != SQLITE_DONE) {
                return std::unexpected(sqlite::error(db_, "delete segment " + op.pool));
            }
            return {};
        }
        case JournalOp::Kind::raise_meta: {
            sqlite::Query q(
                db_,
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO "
                "UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))");
            if (!q.ok()) {
                return std::unexpected(sqlite::error(db_, "write meta " + op.pool));
            }
            sqlite3_bind_text(q.get(), 1, op.pool.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(q.get(), 2, op.row.id);
            if (q.step() != SQLITE_DONE) {
                return std::unexpected(sqlite::error(db_, "write meta " + op.pool));
            }
            return {};
        }
        case JournalOp::Kind::read_environment: {
            // A read never fails the transaction it shares with other clients' writes: what it could not
            // read is missing from read_into, and its reader says so.
            sqlite::Query q(db_, "SELECT env FROM environments WHERE id = ?1");
            if (!q.ok()) {
                spdlog::error("{}",
                              sqlite::error(db_, "read environment " + std::to_string(op.row.id)).message());
                return {};
            }
            sqlite3_bind_int64(q.get(), 1, op.row.id);
            if (q.step() == SQLITE_ROW) {
                (*op.read_into)[op.row.id] = sqlite::column_text(q.get(), 0);
            }
            return {};
        }
        case JournalOp::Kind::barrier:
            return {};
        case JournalOp::Kind::drop_pool:
            sqlite3_reset(stmts_.drop_pool);
            sqlite3_bind_text(stmts_.drop_pool, 1, op.pool.c_str(), -1, SQLITE_TRANSIENT);
            if (sqlite3_step(stmts_.drop_pool) != SQLITE_DONE) {
                return std::unexpected(sqlite::error(db_, "drop pool " + op.pool));
            }
            return {};
    }
    return {};
}

common::Result<void> Store::apply(std::vector<JournalOp>& batch) {
    if (auto r = sqlite::run(db_, stmts_.begin); !r) {
        return r;
    }
    // Only the last update of a task in a batch matters.
    std::map<int64_t, size_t> last_update;
    for (size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].kind == JournalOp::Kind::update_task) {
            last_update[batch[i].row.id] = i;
        }
    }
    common::Result<void> result;
    for (size_t i = 0; i < batch.size() && result; ++i) {
        const JournalOp& op = batch[i];
        if (op.kind == JournalOp::Kind::update_task && last_update[op.row.id] != i) {
            continue;
        }
        result = apply_one(op);
    }
    if (result) {
        result = sqlite::run(db_, stmts_.commit);
    }
    if (!result) {
        (void)sqlite::run(db_, stmts_.rollback);
        // A dict read in this batch saw writes that are now rolled back: read again, outside the
        // transaction, what the journal holds. A read must get through while a full disk fails the writes
        // it is batched with, since what waits for the dict waits for the read.
        for (const JournalOp& op : batch) {
            if (op.kind == JournalOp::Kind::manager && op.manager->kind == ManagerWrite::Kind::read_dict) {
                (void)manager_stmts_.apply(db_, *op.manager);
            }
        }
    }
    return result;
}

}  // namespace mpctl::daemon
