#include <algorithm>

#include <asio/post.hpp>
#include <spdlog/spdlog.h>

#include <mpctl/daemon/store/group_commit.hpp>

namespace mpctl::daemon {

GroupCommit::GroupCommit(Durability durability, Commit commit)
    : durability_(durability), commit_(std::move(commit)) {}

GroupCommit::~GroupCommit() {
    stop();
}

void GroupCommit::start(asio::io_context& loop) {
    loop_ = &loop;
    flush_timer_ = std::make_unique<asio::steady_timer>(loop);
    if (durability_ == Durability::full) {
        writer_ = std::thread([this] { writer_loop(); });
    }
}

void GroupCommit::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopped_) {
            return;
        }
        stopping_ = true;
    }
    wake_.notify_all();
    if (writer_.joinable()) {
        writer_.join();  // it commits what is queued before it returns
    }
    if (durability_ == Durability::normal && loop_ != nullptr) {
        if (flush_timer_) {
            flush_timer_->cancel();
        }
        flush_on_loop();
    }
    std::lock_guard lock(mutex_);
    stopped_ = true;
}

void GroupCommit::enqueue(std::vector<JournalOp> ops, bool may_group) {
    bool acknowledged =
        std::any_of(ops.begin(), ops.end(), [](const JournalOp& op) { return op.done != nullptr; });
    {
        std::lock_guard lock(mutex_);
        for (auto& op : ops) {
            queue_.push_back(std::move(op));
        }
        if (durability_ == Durability::normal) {
            if (loop_ == nullptr || stopped_ || flush_posted_) {
                return;
            }
            auto now = std::chrono::steady_clock::now();
            if (acknowledged && !(may_group && now - last_commit_ < k_busy_gap)) {
                // Someone waits for this commit: one commit for everything queued by the events the loop
                // is handling now.
                flush_posted_ = true;
                asio::post(*loop_, [this] { flush_on_loop(); });
            } else if (acknowledged) {
                // Commits are coming back to back: this one shares the next, a moment away.
                flush_by(last_commit_ + k_busy_gap);
            } else if (!flush_timer_armed_) {
                // State changes nobody waits for are gathered for a moment: under load that is one commit
                // per many tasks instead of two per task.
                flush_by(now + k_update_delay);
            }
            return;
        }
    }
    wake_.notify_one();
}

void GroupCommit::flush_by(std::chrono::steady_clock::time_point when) {
    if (flush_timer_armed_ && flush_timer_->expiry() <= when) {
        return;
    }
    flush_timer_armed_ = true;
    // Moving the expiry cancels the wait already pending: its handler hears operation_aborted.
    flush_timer_->expires_at(when);
    flush_timer_->async_wait([this](const std::error_code& ec) {
        if (ec == asio::error::operation_aborted) {
            return;  // moved earlier (a new wait is pending), or stop(), which flushes
        }
        {
            std::lock_guard lock(mutex_);
            flush_timer_armed_ = false;
        }
        if (ec) {
            spdlog::error("journal flush timer: {}", ec.message());
        }
        flush_on_loop();
    });
}

GroupCommit::Outcome GroupCommit::commit(std::vector<JournalOp> batch) {
    Outcome out;
    out.result = commit_(batch);
    if (out.result) {
        ++commits_;
    } else {
        spdlog::error("journal commit of {} writes failed: {}", batch.size(), out.result.error().message());
    }
    // Acknowledged writes learn the outcome. Of a failed commit only the state updates are retried: the
    // inserts belonged to submissions that were just told they failed, and must not come back.
    for (auto& op : batch) {
        if (op.done) {
            out.completions.push_back(std::move(op.done));
        }
        if (!out.result && op.retried()) {
            out.retry.push_back(std::move(op));
        }
    }
    return out;
}

std::vector<JournalOp> GroupCommit::take_queue() {
    std::vector<JournalOp> batch;
    batch.reserve(queue_.size());
    for (auto& op : queue_) {
        batch.push_back(std::move(op));
    }
    queue_.clear();
    return batch;
}

bool GroupCommit::requeue(std::vector<JournalOp>& retry) {
    for (auto it = retry.rbegin(); it != retry.rend(); ++it) {
        queue_.push_front(std::move(*it));
    }
    if (stopping_) {
        spdlog::error("dropping {} journal updates at shutdown after a failed commit", queue_.size());
        queue_.clear();
        return false;
    }
    return true;
}

void GroupCommit::flush_on_loop() {
    std::vector<JournalOp> batch;
    {
        std::lock_guard lock(mutex_);
        flush_posted_ = false;
        batch = take_queue();
    }
    if (batch.empty()) {
        return;
    }
    Outcome out = commit(std::move(batch));
    last_commit_ = std::chrono::steady_clock::now();
    for (const auto& done : out.completions) {
        done(out.result);
    }
    if (out.retry.empty()) {
        return;
    }
    std::lock_guard lock(mutex_);
    if (requeue(out.retry) && !flush_posted_) {
        // New writes join the retry's commit.
        flush_posted_ = true;
        auto timer = std::make_shared<asio::steady_timer>(*loop_, k_retry_after);
        timer->async_wait([this, timer](const std::error_code& ec) {
            if (ec && ec != asio::error::operation_aborted) {
                spdlog::error("journal retry timer: {}", ec.message());
            }
            flush_on_loop();
        });
    }
}

void GroupCommit::writer_loop() {
    for (;;) {
        std::vector<JournalOp> batch;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty() && stopping_) {
                return;
            }
            batch = take_queue();
        }
        Outcome out = commit(std::move(batch));
        if (!out.completions.empty() && loop_ != nullptr) {
            asio::post(*loop_, [completions = std::move(out.completions), result = out.result]() {
                for (const auto& done : completions) {
                    done(result);
                }
            });
        }
        if (!out.retry.empty()) {
            std::unique_lock lock(mutex_);
            if (!requeue(out.retry)) {
                return;
            }
            wake_.wait_for(lock, k_retry_after, [this] { return stopping_; });
        }
    }
}

}  // namespace mpctl::daemon
