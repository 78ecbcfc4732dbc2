#pragma once
// The manager's rows in the journal: durable queues with their values, dicts with their entries
// (manager/queue_table.hpp, manager/kv_table.hpp), and the tokens of remote clients (remote/token_table.hpp).
// A ManagerWrite is one change, applied inside the group commit's transaction; ManagerJournal is the seam the
// tables write through (Store, or a test's fake).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <mpctl/common/result.hpp>

struct sqlite3;
struct sqlite3_stmt;

namespace mpctl::daemon {

struct ManagerWrite {
    enum class Kind {
        delete_queue,  // name: the queue and its values
        insert_items,  // name, items; the queue's row (maxsize, created_at_ms) if it has none yet
        read_dict,     // name: the dict as the journal has it, into read_into
        put_token,     // name, key (the secret's hash), value (the methods as a JSON array), created_at_ms
        delete_token,  // name
        delete_items,  // name, seqs
        kv_set,        // name, key, value, version (the dict's version after it)
        kv_delete,     // name, key, version
    } kind;
    std::string name;
    int64_t maxsize = 0;
    int64_t created_at_ms = 0;
    std::vector<std::pair<int64_t, std::string>> items;  // (seq, value as JSON text)
    std::vector<int64_t> seqs;
    std::string key;
    std::string value;
    int64_t version = 0;
    std::shared_ptr<struct DictRow> read_into = nullptr;
    bool queue_row = true;  // insert_items: the queue's row too (a queue known journaled skips it)
};

// What a start reads back.
struct QueueRow {
    std::string name;
    int64_t maxsize = 0;
    int64_t created_at_ms = 0;
    std::vector<std::pair<int64_t, std::string>> items;  // by seq
};
struct DictEntryRow {
    std::string key;
    std::string value;
    int64_t version = 0;
};
struct DictRow {
    std::string name;
    int64_t version = 0;
    std::vector<DictEntryRow> entries;  // by key
};

struct TokenRow {
    std::string name;
    std::string hash;     // SHA-256 of the secret, hex
    std::string methods;  // a JSON array of patterns
    int64_t created_at_ms = 0;
};

class ManagerJournal {
  public:
    using Done = std::function<void(common::Result<void>)>;
    virtual ~ManagerJournal() = default;
    // WRITES in one transaction, in order, after every write queued before; DONE runs on the loop with
    // the commit's result (all or nothing).
    virtual void write(std::vector<std::shared_ptr<const ManagerWrite>> writes, Done done) = 0;
};

// The statements the writes use, compiled once on the connection that commits.
class ManagerStatements {
  public:
    ManagerStatements() = default;
    ~ManagerStatements();
    ManagerStatements(const ManagerStatements&) = delete;
    ManagerStatements& operator=(const ManagerStatements&) = delete;

    // Applies W on DB (inside the caller's transaction).
    [[nodiscard]] common::Result<void> apply(sqlite3* db, const ManagerWrite& w);

  private:
    [[nodiscard]] common::Result<sqlite3_stmt*> statement(sqlite3* db, int which, const char* sql);
    sqlite3_stmt* stmts_[10] = {};
};

[[nodiscard]] common::Result<std::vector<QueueRow>> load_queue_rows(sqlite3* db);
[[nodiscard]] common::Result<std::vector<DictRow>> load_dict_rows(sqlite3* db);
// Dict NAME's entries and version, as committed (empty when it has none).
[[nodiscard]] common::Result<DictRow> load_dict_row(sqlite3* db, const std::string& name);
[[nodiscard]] common::Result<std::vector<TokenRow>> load_token_rows(sqlite3* db);

}  // namespace mpctl::daemon
