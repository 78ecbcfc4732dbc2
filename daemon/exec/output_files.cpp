#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/paths.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/output_files.hpp>

namespace mpctl::daemon {

namespace {
constexpr int64_t k_tasks_per_shard = 1000;
}

OutputLayout::OutputLayout(std::string state_dir, size_t stock)
    : root_(std::move(state_dir) + "/output"), stock_target_(stock) {
    if (stock_target_ > 0) {
        refiller_ = std::thread([this] { refill_loop(); });
    }
}

OutputLayout::~OutputLayout() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (refiller_.joinable()) {
        refiller_.join();
    }
}

std::string OutputLayout::shard_dir(int64_t task_id) const {
    return root_ + "/" + std::to_string(task_id / k_tasks_per_shard);
}

OutputPaths OutputLayout::paths(int64_t task_id) const {
    std::string base = shard_dir(task_id) + "/" + std::to_string(task_id);
    return {base + ".stdout", base + ".stderr"};
}

common::Result<void> OutputLayout::ensure_shard(int64_t task_id) {
    int64_t shard = task_id / k_tasks_per_shard;
    if (prepared_shards_.contains(shard)) {
        return {};
    }
    if (auto r = common::make_dirs(shard_dir(task_id), 0700); !r) {
        return r;
    }
    if (prepared_shards_.empty()) {
        // The output root exists now: the stock can be made in it.
        std::lock_guard lock(mutex_);
        root_ready_ = true;
        wake_.notify_one();
    }
    prepared_shards_.insert(shard);
    return {};
}

common::UniqueFd OutputLayout::take_from_stock() {
    std::lock_guard lock(mutex_);
    if (stock_.empty()) {
        wake_.notify_one();
        return {};
    }
    common::UniqueFd fd = std::move(stock_.front());
    stock_.pop_front();
    if (stock_.size() < stock_target_ / 2) {
        wake_.notify_one();
    }
    return fd;
}

common::Result<common::UniqueFd> OutputLayout::open_one(const std::string& path) {
    if (common::UniqueFd fd = take_from_stock()) {
        // Name the unnamed file. /proc/self/fd is the unprivileged way (AT_EMPTY_PATH needs a capability).
        std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
        if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) {
            return fd;
        }
        if (errno != EEXIST) {
            spdlog::debug("linkat {}: {}; creating it instead", path, std::strerror(errno));
        }
        // EEXIST: an earlier attempt's file (a retry); it is truncated below, and this fd is dropped.
    }
    return common::open_cloexec(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
}

common::Result<OutputFds> OutputLayout::open(int64_t task_id) {
    if (auto r = ensure_shard(task_id); !r) {
        return std::unexpected(r.error());
    }
    OutputPaths p = paths(task_id);
    auto out = open_one(p.stdout_path);
    if (!out) {
        return std::unexpected(out.error());
    }
    auto err = open_one(p.stderr_path);
    if (!err) {
        return std::unexpected(err.error());
    }
    return OutputFds{std::move(*out), std::move(*err)};
}

void OutputLayout::refill_loop() {
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || (root_ready_ && stock_.size() < stock_target_); });
            if (stopping_) {
                return;
            }
        }
        // Created outside the lock: this is the slow part, and the loop may take from the stock meanwhile.
        int fd = ::open(root_.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) {
            spdlog::info("O_TMPFILE in {}: {}; output files are created on the spot", root_,
                         std::strerror(errno));
            return;
        }
        std::lock_guard lock(mutex_);
        stock_.emplace_back(fd);
    }
}

}  // namespace mpctl::daemon
