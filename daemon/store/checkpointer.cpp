#include <chrono>

#include <spdlog/spdlog.h>

#include <mpctl/daemon/store/checkpointer.hpp>
#include <mpctl/daemon/store/sqlite_util.hpp>

namespace mpctl::daemon {

namespace {
constexpr std::chrono::milliseconds k_retry{100};
}  // namespace

void Checkpointer::watch(sqlite3* db) {
    sqlite3_wal_hook(db, &Checkpointer::on_wal_commit, this);
    thread_ = std::thread([this] { run(); });
}

void Checkpointer::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

int Checkpointer::on_wal_commit(void* self, sqlite3*, const char*, int pages) {
    auto* c = static_cast<Checkpointer*>(self);
    // A passive checkpoint racing with a stream of commits rarely empties the WAL, so it stays above the
    // threshold: asking at every commit would wake the checkpointer once per commit (measured: ~one wake
    // per two tasks under load). Ask again only when the WAL has grown by another quarter threshold, or
    // after it was restarted.
    if (pages < c->requested_at_) {
        c->requested_at_ = 0;  // the WAL started over
    }
    if (pages >= k_pages && pages >= c->requested_at_ + k_pages / 4) {
        c->requested_at_ = pages;
        {
            std::lock_guard lock(c->mutex_);
            c->wanted_ = true;
        }
        c->wake_.notify_all();
    }
    return SQLITE_OK;
}

void Checkpointer::run() {
    auto connection = sqlite::open(path_, SQLITE_OPEN_READWRITE, 1000);
    if (!connection) {
        spdlog::error("checkpointer: {}", connection.error().message());
        return;
    }
    sqlite3* db = connection->get();
    // A connection that has not read the database yet does not know it is in WAL mode, and its checkpoints
    // do nothing (they report -1 pages): read the schema once.
    if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) != SQLITE_OK) {
        spdlog::warn("checkpointer: {}", sqlite3_errmsg(db));
    }
    // Once asked, it keeps checkpointing every k_retry until a round finds the WAL quiet and wholly
    // copied: only then does the next commit start the WAL over. Stopping at the first round would leave
    // the frames of the last commits of a burst uncopied, and the WAL would grow with every burst for as
    // long as the daemon runs (measured: ~2 KB per task).
    bool polling = false;
    int last_log_pages = -1;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            auto wanted = [this] {
                return stopping_ || wanted_;
            };
            if (polling) {
                wake_.wait_for(lock, k_retry, wanted);
            } else {
                wake_.wait(lock, wanted);
            }
            if (stopping_) {
                break;
            }
            wanted_ = false;
        }
        // PASSIVE never blocks the loop's commits; what it cannot copy now, the next round will.
        int log_pages = 0;
        int copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
            spdlog::warn("checkpoint: {}", sqlite3_errmsg(db));
        }
        bool quiet = rc == SQLITE_OK && copied == log_pages && log_pages == last_log_pages;
        polling = !quiet;
        last_log_pages = log_pages;
    }
}

}  // namespace mpctl::daemon
