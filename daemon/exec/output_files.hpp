#pragma once
// Where a task's captured output lives: STATE_DIR/output/<id / 1000>/<id>.stdout|.stderr (sharding keeps
// directories small in long-lived state dirs), and opening those files for a task's start. Those names are
// always the latest attempt's: when a retry starts, the files of the attempt before it are renamed aside to
// <id>.attempt-<N>.stdout|.stderr (a rename per file, on retries only), so every attempt's output is kept.
//
// Creating a file allocates an inode: about ten microseconds on tmpfs or a quiet ext4, but up to a
// millisecond on an ext4 that deleted many files in the last minutes (its allocator steps over recently
// freed inodes one by one). So a start creates its task's files on the spot while that is fast, and
// once a creation is slow, the files of the tasks at the head of each queue are created ahead by a
// background thread for a while (a start then only takes the open descriptors), until creations have
// been fast for a minute again. Not always ahead: the hand-over between threads and the descriptors
// held open (every spawn copies the daemon's descriptor table) cost more than a fast creation
// (measured: 2000 `true` tasks, 2 workers, state on tmpfs: 711 ms on the spot, 794 ms always ahead).
// paths(), prepares_ahead(), expect(), forget() and open() are for the loop thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

struct OutputPaths {
    std::string stdout_path;
    std::string stderr_path;
};

struct OutputFds {
    common::UniqueFd stdout_fd;                // write-only, close-on-exec, empty
    std::vector<common::UniqueFd> stderr_fds;  // one per stage
};

class OutputLayout {
  public:
    using Clock = std::chrono::steady_clock;
    // A task's files that take more CPU time than this to create turn on preparing ahead (tmpfs: ~20 us;
    // an ext4 that just deleted 100,000 files: 0.5 to 1.3 ms).
    static constexpr std::chrono::microseconds k_slow_create{250};
    // ... that many times in a row.
    static constexpr int k_slow_streak = 3;
    // The loop times one creation in this many while they are fast (and every one after a slow one): a
    // thread's CPU clock is a system call (no vDSO serves it), two per timing, which cost more than the rest
    // of a fast creation's bookkeeping. A slow file system is a lasting state: it is still seen at once.
    static constexpr unsigned k_timed_every = 8;
    // How long preparing ahead stays on after the last slow creation.
    static constexpr std::chrono::seconds k_ahead_for{60};

    // LOOKAHEAD: how many tasks' files may be prepared ahead (0: none, every file is created at start).
    // SLOW_CREATE: see k_slow_create (tests pass zero: every creation is slow, always ahead).
    explicit OutputLayout(std::string state_dir, size_t lookahead = 8,
                          std::chrono::microseconds slow_create = k_slow_create);
    ~OutputLayout();
    OutputLayout(const OutputLayout&) = delete;
    OutputLayout& operator=(const OutputLayout&) = delete;

    // ATTEMPT 0 (or the latest attempt): the live names; an earlier attempt: where its files were put aside.
    [[nodiscard]] OutputPaths paths(int64_t task_id, int attempt = 0) const;
    // A pipeline's stage STAGE writes its stderr here (a one-process task uses paths().stderr_path).
    [[nodiscard]] std::string stage_stderr_path(int64_t task_id, size_t stage, int attempt = 0) const;

    // Whether expect() does anything now: creations were slow lately.
    [[nodiscard]] bool prepares_ahead() const;
    // TASK_ID is queued and will start later: create its files in the background (if prepares_ahead()).
    void expect(int64_t task_id);
    // TASK_ID will not start after all (cancelled, failed): drop what was prepared for it.
    void forget(int64_t task_id);
    // TASK_ID is removed (`mpctl remove`, `clean`): its files (STAGES stderr files for a pipeline, those
    // of every one of its ATTEMPTS) are deleted by the background thread, so that removing thousands does
    // not stall the loop.
    void remove(int64_t task_id, size_t stages = 1, int attempts = 1);
    // Blocks until every removal asked so far is done (tests).
    void wait_removed();

    // The task's files for its attempt ATTEMPT, empty: stdout and one stderr per stage. A first attempt of
    // a one-stage task gets the prepared ones if they are ready; otherwise they are created now, and timed.
    // A later attempt first puts the files of the attempt before it aside.
    [[nodiscard]] common::Result<OutputFds> open(int64_t task_id, size_t stages = 1, int attempt = 1);

    // The highest task id with files under STATE_DIR's output directory (0: none). A start never hands
    // out an id at or below it: a journal that lost rows (deleted, or salvaged by `mpctld --recover`) must
    // not give a new task the id of an old one, whose files its start would truncate.
    [[nodiscard]] static int64_t highest_task_id(const std::string& state_dir);

    // Output retention: cuts the file at PATH back to LIMIT bytes if it grew past it; true if it did. The
    // files are opened O_APPEND, so the task's next write lands at the new end, and the file keeps
    // exactly its first LIMIT bytes once the last cut is made.
    static bool cap(const std::string& path, uint64_t limit);

  private:
    [[nodiscard]] std::string shard_dir(int64_t task_id) const;
    // <shard>/<id>, or <shard>/<id>.attempt-<ATTEMPT> for an attempt that is not the latest.
    [[nodiscard]] std::string base(int64_t task_id, int attempt) const;
    // Renames the live files of TASK_ID (of a task of STAGES stages) to those of its attempt ATTEMPT.
    void put_aside(int64_t task_id, size_t stages, int attempt) const;
    [[nodiscard]] common::Result<OutputFds> create(int64_t task_id,
                                                   std::unordered_set<int64_t>& shards) const;
    void prepare_loop();
    // Times a creation (BEGAN: the thread's CPU time before it): k_slow_streak slow ones in a row (counted
    // in SLOW_STREAK, one counter per thread) (re)start the period of preparing ahead.
    void note_creation(std::chrono::nanoseconds began, int& slow_streak);

    std::string root_;
    size_t lookahead_;
    std::chrono::microseconds slow_create_;
    std::atomic<Clock::rep> ahead_until_{0};   // steady clock ticks; written by both threads
    std::unordered_set<int64_t> loop_shards_;  // shard directories the loop knows exist
    int loop_slow_streak_ = 0;
    unsigned loop_creations_ = 0;  // created on the loop, for k_timed_every

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<int64_t> wanted_;           // in order; may hold ids no longer wanted
    std::unordered_set<int64_t> pending_;  // the ids of wanted_ still wanted
    std::unordered_map<int64_t, OutputFds> ready_;
    int64_t in_progress_ = 0;          // the task whose files the thread is creating right now
    std::vector<std::string> doomed_;  // files to delete
    bool removing_ = false;            // the thread is deleting a batch of them
    bool preparer_idle_ = false;       // waiting for work: only then is it worth a wake-up
    bool stopping_ = false;
    std::thread preparer_;
};

}  // namespace mpctl::daemon
