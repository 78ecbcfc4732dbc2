#pragma once
// GroupCommit: the journal's write queue. Writes queue up and are committed in groups, one transaction per
// group, and each write's completion runs on the daemon's loop after COMMIT returned: "durable before
// acknowledged", a submit is answered from its completion. Where the commit runs depends on durability:
//   full:   on a writer thread, because every commit fsyncs the WAL (the loop never waits for a disk);
//   normal: on the loop itself, at the end of the current batch of events: a commit is then only a few
//           page-cache writes, and a thread hop would cost more than the commit.
// Either way every write that queued while a commit was running goes into the next one. Writes nobody
// waits for (a task started or finished) may wait k_update_delay to share a commit with others; so may,
// for up to k_busy_gap after the previous commit, a write that is waited for but said to be groupable
// (the end of a task told to its waiters while other tasks wait for slots). When a
// commit fails, its completions hear the error and its state updates go back to the head of the queue,
// to be tried again a second later (a full disk may have room by then).
//
// enqueue(), start() and stop() are for the loop thread; the writer thread only commits.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/store/durability.hpp>
#include <mpctl/daemon/store/journal_op.hpp>

namespace mpctl::daemon {

class GroupCommit {
  public:
    // Writes BATCH in one transaction (all or nothing); runs on whichever thread commits.
    using Commit = std::function<common::Result<void>(std::vector<JournalOp>& batch)>;

    // How long unacknowledged state changes may wait to share a commit (durability normal).
    static constexpr std::chrono::milliseconds k_update_delay{2};
    static constexpr std::chrono::seconds k_retry_after{1};
    // How long after a commit a groupable acknowledged write may wait (durability normal): under load,
    // ends told to waiters are committed at most about once a millisecond, each commit carrying all of
    // its millisecond's, rather than one commit (and one wake-up of each waiter) per event or two.
    static constexpr std::chrono::microseconds k_busy_gap{1000};

    GroupCommit(Durability durability, Commit commit);
    ~GroupCommit();
    GroupCommit(const GroupCommit&) = delete;
    GroupCommit& operator=(const GroupCommit&) = delete;

    // Starts committing; completions run on LOOP.
    void start(asio::io_context& loop);
    // Commits everything queued and stops the writer thread. Completions not yet run are dropped.
    void stop();

    // MAY_GROUP (durability normal): the acknowledged writes among OPS may wait until k_busy_gap after
    // the previous commit, when that was less than k_busy_gap ago; otherwise they commit at once.
    void enqueue(std::vector<JournalOp> ops, bool may_group = false);

    // Commits so far (for diagnostics: how well writes were grouped).
    [[nodiscard]] uint64_t commit_count() const { return commits_; }

  private:
    struct Outcome {
        common::Result<void> result;
        std::vector<JournalOp::Done> completions;
        std::vector<JournalOp> retry;
    };
    // Commits BATCH and sorts it: completions to run, and updates to retry if the commit failed.
    Outcome commit(std::vector<JournalOp> batch);
    std::vector<JournalOp> take_queue();
    // Puts a failed commit's updates back at the head of the queue (caller holds mutex_); false when
    // stopping, and then they are dropped with an error in the log.
    bool requeue(std::vector<JournalOp>& retry);
    void writer_loop();
    void flush_on_loop();
    // A flush at WHEN at the latest (caller holds mutex_, durability normal).
    void flush_by(std::chrono::steady_clock::time_point when);

    Durability durability_;
    Commit commit_;
    asio::io_context* loop_ = nullptr;
    std::thread writer_;  // durability full
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<JournalOp> queue_;
    bool stopping_ = false;
    bool stopped_ = false;
    bool flush_posted_ = false;       // normal: a flush_on_loop is pending on the loop
    bool flush_timer_armed_ = false;  // normal: a deferred flush is pending
    std::unique_ptr<asio::steady_timer> flush_timer_;
    std::chrono::steady_clock::time_point last_commit_{};  // normal: when the loop's last commit ended
    std::atomic<uint64_t> commits_{0};
};

}  // namespace mpctl::daemon
