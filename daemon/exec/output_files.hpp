#pragma once
// Where a task's captured output lives: STATE_DIR/output/<id / 1000>/<id>.stdout|.stderr (sharding keeps
// directories small in long-lived state dirs), and opening those files for a task's start.
//
// Creating a file allocates an inode, which costs tens of microseconds on a quiet ext4 and milliseconds
// on one that recently deleted many files (the allocator skips recently freed inodes one by one). So a
// background thread keeps a stock of unnamed files (O_TMPFILE) ready, and a start only names two of them
// (linkat): the loop never waits for the inode allocator. Where O_TMPFILE is not supported the files are
// created on the spot. paths() and open() are for the loop thread.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

struct OutputPaths {
    std::string stdout_path;
    std::string stderr_path;
};

struct OutputFds {
    common::UniqueFd stdout_fd;  // write-only, close-on-exec, empty
    common::UniqueFd stderr_fd;
};

class OutputLayout {
  public:
    // STOCK: how many unnamed files to keep ready (0: create every file on the spot).
    explicit OutputLayout(std::string state_dir, size_t stock = 64);
    ~OutputLayout();
    OutputLayout(const OutputLayout&) = delete;
    OutputLayout& operator=(const OutputLayout&) = delete;

    [[nodiscard]] OutputPaths paths(int64_t task_id) const;

    // The task's two files, empty: named from the stock on a first attempt, truncated on a retry.
    [[nodiscard]] common::Result<OutputFds> open(int64_t task_id);

  private:
    [[nodiscard]] std::string shard_dir(int64_t task_id) const;
    [[nodiscard]] common::Result<void> ensure_shard(int64_t task_id);
    [[nodiscard]] common::Result<common::UniqueFd> open_one(const std::string& path);
    common::UniqueFd take_from_stock();
    void refill_loop();

    std::string root_;
    std::unordered_set<int64_t> prepared_shards_;

    size_t stock_target_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<common::UniqueFd> stock_;
    bool root_ready_ = false;  // the first task created the output root (nothing is made before)
    bool stopping_ = false;
    std::thread refiller_;
};

}  // namespace mpctl::daemon
