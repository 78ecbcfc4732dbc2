#include <algorithm>

#include <spdlog/spdlog.h>

#include <mpctl/daemon/commands/task_text.hpp>
#include <mpctl/daemon/commands/task_wait.hpp>

namespace mpctl::daemon {

TaskWait::TaskWait(const TaskContext& ctx, std::shared_ptr<Responder> responder, Options options)
    : ctx_(ctx), responder_(std::move(responder)), options_(std::move(options)) {}

void TaskWait::start(const TaskContext& ctx, std::shared_ptr<Responder> responder, Options options) {
    auto w = std::make_shared<TaskWait>(ctx, std::move(responder), std::move(options));
    std::vector<const Task*> finished;
    std::vector<int64_t> unfinished;
    for (int64_t id : w->options_.ids) {
        const Task& t = known_task(ctx, id);
        if (t.finished()) {
            finished.push_back(&t);
        } else {
            unfinished.push_back(id);
        }
    }
    if (w->options_.stream) {
        // Those already done come first, in the order they finished, ties as asked (sorted with their
        // places: std::stable_sort's temporary buffer is deprecated in the libstdc++ clang 19 builds with).
        std::vector<std::pair<int64_t, size_t>> order;
        for (size_t i = 0; i < finished.size(); ++i) {
            order.emplace_back(finished[i]->finished_at_ms.value_or(0), i);
        }
        std::sort(order.begin(), order.end());
        for (auto [ms, i] : order) {
            notify_completed(ctx.view, *w->responder_, *finished[i], w->options_.brief);
        }
    }
    w->unfinished_ = unfinished.size();
    bool any_done = w->options_.any && !finished.empty();
    const auto& timeout = w->options_.timeout;
    if (unfinished.empty() || any_done || (timeout && timeout->count() == 0)) {
        w->finish(!unfinished.empty() && !any_done);
        return;
    }
    // The table and the timer hold the wait; the responder's disconnect hook lets go of both.
    w->watch_ = ctx.futures.watch(
        unfinished, [w](const Task& t) { guarded(w->responder_, [&] { w->one_finished(t); }); });
    if (timeout) {
        w->timer_ = std::make_unique<asio::steady_timer>(ctx.io, *timeout);
        w->timer_->async_wait([w](const std::error_code& ec) {
            if (ec == asio::error::operation_aborted) {
                return;
            }
            if (ec) {
                spdlog::error("wait timer: {}", ec.message());
            }
            guarded(w->responder_, [&] { w->finish(true); });
        });
    }
    w->responder_->on_disconnect([w] { w->abandon(); });
}

void TaskWait::one_finished(const Task& task) {
    if (done_) {
        return;
    }
    if (options_.stream) {
        notify_completed(ctx_.view, *responder_, task, options_.brief);
    }
    if (--unfinished_ == 0 || options_.any) {
        finish(false);
    }
}

void TaskWait::abandon() {
    done_ = true;
    ctx_.futures.unwatch(watch_);
    if (timer_) {
        timer_->cancel();
    }
}

void TaskWait::finish(bool timed_out) {
    if (done_) {
        return;
    }
    abandon();
    // Written as text: a wait on a whole batch answers with thousands of statuses.
    std::vector<int64_t> done;
    std::vector<int64_t> pending;
    std::vector<const Task*> tasks;
    for (int64_t id : options_.ids) {
        const Task* t = ctx_.scheduler.find(id);
        if (t == nullptr) {
            continue;
        }
        (t->finished() ? done : pending).push_back(id);
        if (!options_.stream) {
            tasks.push_back(t);
        }
    }
    std::string result = R"({"done":)";
    append_ids(done, result);
    result += R"(,"pending":)";
    append_ids(pending, result);
    if (!options_.stream) {
        result += R"(,"tasks":)";
        append_statuses(ctx_.view, tasks, result);
    }
    result += timed_out ? R"(,"timed_out":true})" : R"(,"timed_out":false})";
    responder_->result_text(result);
}

}  // namespace mpctl::daemon
