// MapRun (map_run.hpp): the window of submitted tasks, refilled with task.submit_batch.

#include <algorithm>

#include <mpctl/cli/commands/map_run.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::cli {

namespace {

// A batch request stays well under the daemon's 1 MiB line limit.
constexpr size_t k_max_batch_bytes = 512 * 1024;
// In input order, at most this many finished tasks wait for an earlier one before submitting pauses
// (each waits as an id and two paths: a few MB at most).
constexpr size_t k_max_waiting = 100'000;

}  // namespace

// Sends the next batch if there is room in the window and items to fill it. True when it should be called
// again at once: an item that could not run has just failed, and nothing was sent after it yet.
bool MapRun::maybe_submit() {
    if (batch_id_ != 0 || stopping()) {
        return false;
    }
    if (unrunnable_) {
        // Nothing after an item that cannot run starts before it has failed, and it fails once everything
        // before it is done: then a halt it causes stops what follows it, as with a task that failed.
        if (inflight_ != 0) {
            return false;
        }
        unrunnable_item(*std::exchange(unrunnable_, std::nullopt));
        return !stopping();
    }
    if (!o_.unordered && reorder_.waiting() >= k_max_waiting) {
        return false;
    }
    if (throttled_ && inflight_ != 0) {
        return false;  // the array out is not over
    }
    size_t free = window_ > inflight_ ? window_ - inflight_ : 0;
    // Batches of a quarter window at least, unless the daemon would idle or no more items are coming.
    bool worth_it = free >= std::max<size_t>(1, window_ / 4) || inflight_ < jobs_ || source_.at_eof() ||
                    !resubmit_.empty();
    if (free == 0 || !worth_it) {
        return false;
    }
    std::string tasks;
    size_t count = 0;
    size_t chunk = static_cast<size_t>(std::max(1, o_.chunksize));
    // First what a restarted daemon cancelled, at its places in input order.
    while (count < free && !resubmit_.empty() && tasks.size() < k_max_batch_bytes) {
        uint64_t seq = resubmit_.front();
        resubmit_.pop_front();
        tasks += tasks.empty() ? "[" : ",";
        tasks += spec_of_.at(seq);
        batch_seqs_.push_back(seq);
        ++count;
    }
    while (count < free && tasks.size() < k_max_batch_bytes) {
        while (chunk_.size() < chunk) {
            auto item = source_.next();
            if (!item) {
                break;
            }
            ++items_taken_;
            if (source_.reads_lines() && item->find('\0') != std::string::npos) {
                unrunnable_ = items_taken_;
                break;
            }
            chunk_.push_back(std::move(*item));
        }
        // A chunk cut short by an item that cannot run goes as it is: the items before that one.
        if (chunk_.empty() || (chunk_.size() < chunk && !source_.at_eof() && !unrunnable_)) {
            break;
        }
        std::string one;
        append_task(one);
        tasks += tasks.empty() ? "[" : ",";
        tasks += one;
        chunk_.clear();
        spec_of_.emplace(next_seq_, std::move(one));
        batch_seqs_.push_back(next_seq_++);
        ++count;
        if (unrunnable_) {
            break;
        }
    }
    if (count == 0) {
        return unrunnable_ && inflight_ == 0;  // it was first: it fails now
    }
    tasks += "]";
    std::string params = R"({"defaults":)" + defaults_text_ + R"(,"tasks":)" + tasks + "}";
    try {
        batch_id_ = client_->send_params_text("task.submit_batch", params);
    } catch (const ConnectionLost& e) {
        // Some of it may have reached the daemon: a submit is never sent twice, so the map ends here.
        throw CliError(e.code(), std::string(e.what()) + " while it submitted a batch of this map's tasks");
    }
    inflight_ += count;
    return false;
}

void MapRun::append_task(std::string& out) const {
    if (template_->shell()) {
        out += R"({"shell":)";
        proto::append_json_string(out, template_->script(chunk_));
        out += "}";
        return;
    }
    out += R"({"argv":[)";
    bool first = true;
    for (const auto& w : template_->argv(chunk_)) {
        if (!first) {
            out += ",";
        }
        first = false;
        proto::append_json_string(out, w);
    }
    out += "]}";
}

// A message from the daemon: a completion, or the answer to a batch (the ids to watch) or to a request
// whose answer does not matter.
void MapRun::handle(const json& msg) {
    auto id_it = msg.find("id");
    if (id_it == msg.end()) {
        if (msg.value("method", std::string()) == "task.completed") {
            completed(msg.at("params").at("task"));
        }
        return;
    }
    int64_t id = id_it->is_number_integer() ? id_it->get<int64_t>() : 0;
    if (auto err = msg.find("error"); err != msg.end()) {
        bool batch = id == batch_id_;
        if (batch) {
            // Nothing of this batch was queued (a batch is all or nothing).
            inflight_ -= batch_seqs_.size();
            for (uint64_t seq : batch_seqs_) {
                spec_of_.erase(seq);
            }
            batch_seqs_.clear();
            batch_id_ = 0;
        }
        // The batch carries the map's task options: its refusal is said in their words.
        throw batch ? in_option_words(error_from_daemon(*err)) : error_from_daemon(*err);
    }
    if (id != batch_id_) {
        return;  // as_completed's final answer, or a cancel's
    }
    batch_id_ = 0;
    const json& ids = msg.at("result").at("ids");
    json watch = json::array();
    size_t i = 0;
    for (const auto& v : ids) {
        int64_t task = v.get<int64_t>();
        seq_of_.emplace(task, batch_seqs_.at(i++));
        watch.push_back(task);
    }
    batch_seqs_.clear();
    client_->send("task.as_completed", {{"ids", watch}});
    if (stopping()) {
        // Submitted before a halt or a signal: it goes the way of the others.
        client_->send("task.cancel", {{"ids", watch}, {"force", force_cancel_}});
    }
}

}  // namespace mpctl::cli
