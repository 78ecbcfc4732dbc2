#pragma once
// Checkpointer: folds the WAL back into the database on a thread of its own, with its own connection
// (durability normal, where commits run on the loop and must never wait for the fsync a checkpoint does).
// The committing connection's WAL hook asks for a checkpoint once the WAL has grown past k_pages; the
// thread then checkpoints until a round finds the WAL quiet and wholly copied, so that the next commit
// starts the WAL over. watch() and the hook run on the committing thread; the rest is the checkpointer's.

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include <sqlite3.h>

namespace mpctl::daemon {

class Checkpointer {
  public:
    // The WAL is folded back into the database past this many pages (SQLite's own default).
    static constexpr int k_pages = 1000;

    explicit Checkpointer(std::string path) : path_(std::move(path)) {}
    ~Checkpointer() { stop(); }
    Checkpointer(const Checkpointer&) = delete;
    Checkpointer& operator=(const Checkpointer&) = delete;

    // Starts the thread and hooks the commits of DB (the connection that writes).
    void watch(sqlite3* db);
    void stop();

  private:
    static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);
    void run();

    std::string path_;
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool wanted_ = false;
    bool stopping_ = false;
    int requested_at_ = 0;  // WAL pages when a checkpoint was last asked for (committing thread only)
};

}  // namespace mpctl::daemon
