#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <iterator>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <spdlog/spdlog.h>

#include <mpctl/common/paths.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/output_files.hpp>

namespace mpctl::daemon {

namespace {
constexpr int64_t k_tasks_per_shard = 1000;

// The calling thread's CPU time: what a creation costs, without the time the thread waited for a CPU
// (on a busy machine a preempted thread would otherwise find every creation slow).
std::chrono::nanoseconds thread_cpu_time() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}
}  // namespace

OutputLayout::OutputLayout(std::string state_dir, size_t lookahead, std::chrono::microseconds slow_create)
    : root_(std::move(state_dir) + "/output"), lookahead_(lookahead), slow_create_(slow_create) {
    if (lookahead_ > 0) {
        preparer_ = std::thread([this] { prepare_loop(); });
    }
}

OutputLayout::~OutputLayout() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (preparer_.joinable()) {
        preparer_.join();
    }
}

std::string OutputLayout::shard_dir(int64_t task_id) const {
    return root_ + "/" + std::to_string(task_id / k_tasks_per_shard);
}

namespace {

// The number a name starts with ("1234" of "1234.stdout"), if it starts with one.
std::optional<int64_t> leading_number(const char* name) {
    int64_t value = 0;
    const char* end = name + std::strlen(name);
    auto [ptr, ec] = std::from_chars(name, end, value);
    if (ec != std::errc() || ptr == name || (ptr != end && *ptr != '.')) {
        return std::nullopt;
    }
    return value;
}

// The numbers the names in DIR start with, highest first.
std::vector<int64_t> numbered_entries(const std::string& dir) {
    std::vector<int64_t> numbers;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return numbers;
    }
    while (const dirent* e = ::readdir(d)) {
        if (auto n = leading_number(e->d_name)) {
            numbers.push_back(*n);
        }
    }
    ::closedir(d);
    std::sort(numbers.rbegin(), numbers.rend());
    return numbers;
}

}  // namespace

int64_t OutputLayout::highest_task_id(const std::string& state_dir) {
    // Shards hold ids in ascending blocks: the highest shard with a file in it has the answer.
    std::string root = state_dir + "/output";
    for (int64_t shard : numbered_entries(root)) {
        auto ids = numbered_entries(root + "/" + std::to_string(shard));
        if (!ids.empty()) {
            return ids.front();
        }
    }
    return 0;
}

std::string OutputLayout::base(int64_t task_id, int attempt) const {
    std::string b = shard_dir(task_id) + "/" + std::to_string(task_id);
    if (attempt > 0) {
        b += ".attempt-" + std::to_string(attempt);
    }
    return b;
}

OutputPaths OutputLayout::paths(int64_t task_id, int attempt) const {
    std::string b = base(task_id, attempt);
    return {b + ".stdout", b + ".stderr"};
}

std::string OutputLayout::stage_stderr_path(int64_t task_id, size_t stage, int attempt) const {
    return base(task_id, attempt) + "." + std::to_string(stage) + ".stderr";
}

void OutputLayout::put_aside(int64_t task_id, size_t stages, int attempt) const {
    OutputPaths live = paths(task_id);
    OutputPaths aside = paths(task_id, attempt);
    std::vector<std::pair<std::string, std::string>> moves{{live.stdout_path, aside.stdout_path}};
    if (stages <= 1) {
        moves.emplace_back(live.stderr_path, aside.stderr_path);
    }
    for (size_t i = 0; stages > 1 && i < stages; ++i) {
        moves.emplace_back(stage_stderr_path(task_id, i), stage_stderr_path(task_id, i, attempt));
    }
    for (const auto& [from, to] : moves) {
        // Missing is ordinary (a restart salvaged the state dir, someone deleted it): nothing to keep.
        if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
            spdlog::warn("keeping attempt {} of task {}: rename {}: {}; the next attempt overwrites it",
                         attempt, task_id, from, std::strerror(errno));
        }
    }
}

common::Result<OutputFds> OutputLayout::create(int64_t task_id, std::unordered_set<int64_t>& shards) const {
    int64_t shard = task_id / k_tasks_per_shard;
    if (!shards.contains(shard)) {
        if (auto r = common::make_dirs(shard_dir(task_id), 0700); !r) {
            return std::unexpected(r.error());
        }
        shards.insert(shard);
    }
    OutputPaths p = paths(task_id);
    auto out = common::open_cloexec(p.stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (!out) {
        return std::unexpected(out.error());
    }
    auto err = common::open_cloexec(p.stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (!err) {
        return std::unexpected(err.error());
    }
    OutputFds fds;
    fds.stdout_fd = std::move(*out);
    fds.stderr_fds.push_back(std::move(*err));
    return fds;
}

void OutputLayout::note_creation(std::chrono::nanoseconds began, int& slow_streak) {
    if (thread_cpu_time() - began < slow_create_) {
        slow_streak = 0;
        return;
    }
    // Several in a row: one slow creation can be a burst of interrupt work charged to this thread.
    if (++slow_streak >= k_slow_streak) {
        slow_streak = 0;
        ahead_until_.store((Clock::now() + k_ahead_for).time_since_epoch().count(),
                           std::memory_order_relaxed);
    }
}

bool OutputLayout::prepares_ahead() const {
    return lookahead_ > 0 &&
           Clock::now().time_since_epoch().count() < ahead_until_.load(std::memory_order_relaxed);
}

void OutputLayout::expect(int64_t task_id) {
    if (!prepares_ahead()) {
        return;
    }
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        if (!pending_.insert(task_id).second || ready_.contains(task_id)) {
            return;
        }
        wanted_.push_back(task_id);
        wake = preparer_idle_ && ready_.size() <= lookahead_ / 2;
    }
    if (wake) {
        wake_.notify_all();
    }
}

void OutputLayout::forget(int64_t task_id) {
    if (lookahead_ == 0) {
        return;
    }
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        pending_.erase(task_id);
        wake = ready_.erase(task_id) > 0 && preparer_idle_;  // a slot freed
    }
    if (wake) {
        wake_.notify_all();
    }
}

common::Result<OutputFds> OutputLayout::open(int64_t task_id, size_t stages, int attempt) {
    if (attempt > 1) {
        put_aside(task_id, stages, attempt - 1);
    }
    if (stages > 1) {
        // A pipeline: its stdout, and a stderr per stage (never prepared ahead; pipelines are rarer).
        auto first = create(task_id, loop_shards_);
        if (!first) {
            return first;
        }
        OutputFds fds;
        fds.stdout_fd = std::move(first->stdout_fd);
        ::unlink(paths(task_id).stderr_path.c_str());  // a pipeline has per-stage files instead
        for (size_t i = 0; i < stages; ++i) {
            auto err = common::open_cloexec(stage_stderr_path(task_id, i),
                                            O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
            if (!err) {
                return std::unexpected(err.error());
            }
            fds.stderr_fds.push_back(std::move(*err));
        }
        return fds;
    }
    if (lookahead_ > 0) {
        std::unique_lock lock(mutex_);
        // Being created right now: that takes less than creating them again here.
        wake_.wait(lock, [&] { return in_progress_ != task_id; });
        if (auto it = ready_.find(task_id); it != ready_.end()) {
            OutputFds fds = std::move(it->second);
            ready_.erase(it);
            if (preparer_idle_ && ready_.size() <= lookahead_ / 2) {
                wake_.notify_all();  // half empty: one wake-up refills several
            }
            return fds;
        }
        pending_.erase(task_id);  // if it is still wanted, it is not any more
    }
    // Created now (a retry's were put aside above; O_TRUNC still covers files someone put back).
    if (loop_creations_++ % k_timed_every != 0 && loop_slow_streak_ == 0) {
        return create(task_id, loop_shards_);
    }
    auto began = thread_cpu_time();
    auto fds = create(task_id, loop_shards_);
    note_creation(began, loop_slow_streak_);
    return fds;
}

bool OutputLayout::cap(const std::string& path, uint64_t limit) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_size) <= limit) {
        return false;
    }
    return ::truncate(path.c_str(), static_cast<off_t>(limit)) == 0;
}

namespace {

void unlink_all(const std::vector<std::string>& paths) {
    for (const auto& path : paths) {
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            spdlog::warn("removing {}: {}", path, std::strerror(errno));
        }
    }
}

}  // namespace

void OutputLayout::remove(int64_t task_id, size_t stages, int attempts) {
    std::vector<std::string> files;
    // Attempt 0 is the live names (the latest attempt's); the earlier ones were put aside.
    for (int attempt = 0; attempt < std::max(attempts, 1); ++attempt) {
        OutputPaths p = paths(task_id, attempt);
        files.push_back(std::move(p.stdout_path));
        files.push_back(std::move(p.stderr_path));
        for (size_t i = 0; stages > 1 && i < stages; ++i) {
            files.push_back(stage_stderr_path(task_id, i, attempt));
        }
    }
    if (!preparer_.joinable()) {
        unlink_all(files);  // no thread (lookahead 0): a layout for tests and tools
        return;
    }
    {
        std::lock_guard lock(mutex_);
        doomed_.insert(doomed_.end(), std::make_move_iterator(files.begin()),
                       std::make_move_iterator(files.end()));
    }
    wake_.notify_all();
}

void OutputLayout::wait_removed() {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [this] { return stopping_ || (doomed_.empty() && !removing_); });
}

void OutputLayout::prepare_loop() {
    std::unordered_set<int64_t> shards;
    int slow_streak = 0;
    for (;;) {
        int64_t id = 0;
        {
            std::unique_lock lock(mutex_);
            preparer_idle_ = true;
            // Woken when the stock is half used (not per task: a wake-up costs more than a file on tmpfs).
            wake_.wait(lock, [this] {
                return stopping_ || !doomed_.empty() || (!wanted_.empty() && ready_.size() < lookahead_);
            });
            preparer_idle_ = false;
            if (stopping_) {
                return;
            }
            if (!doomed_.empty()) {
                std::vector<std::string> batch = std::move(doomed_);
                doomed_.clear();
                removing_ = true;
                lock.unlock();
                unlink_all(batch);
                lock.lock();
                removing_ = false;
                lock.unlock();
                wake_.notify_all();  // wait_removed
                continue;
            }
            id = wanted_.front();
            wanted_.pop_front();
            if (pending_.erase(id) == 0) {
                continue;  // started or forgotten meanwhile
            }
            in_progress_ = id;
        }
        auto began = thread_cpu_time();
        auto fds = create(id, shards);
        note_creation(began, slow_streak);  // keeps preparing ahead while creations stay slow
        {
            std::lock_guard lock(mutex_);
            in_progress_ = 0;
            if (fds) {
                ready_.emplace(id, std::move(*fds));
            } else {
                // The loop will try again when the task starts, and report the error then.
                spdlog::debug("preparing the output of task {}: {}", id, fds.error().message());
            }
        }
        wake_.notify_all();  // the loop may be waiting for exactly these
    }
}

}  // namespace mpctl::daemon
