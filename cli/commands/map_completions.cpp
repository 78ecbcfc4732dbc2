// MapRun (map_run.hpp): finished tasks (their results, the joblog, the exit code), halts, signals and a
// closed stdout.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <signal.h>

#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/commands/map_run.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/task_status.hpp>

namespace mpctl::cli {

using map::Finished;

void MapRun::completed(const json& task) {
    proto::TaskStatus s = proto::status_from_json(task);
    auto it = seq_of_.find(s.id);
    if (it == seq_of_.end()) {
        return;
    }
    uint64_t seq = it->second;
    seq_of_.erase(it);
    --inflight_;
    if (cancelled_by_restart(s)) {
        if (!told_resubmit_) {
            told_resubmit_ = true;
            progress_.clear();
            std::fprintf(stderr,
                         "mpctl: the daemon restarted and cancelled this map's queued tasks; submitting them "
                         "again\n");
        }
        resubmit_.push_back(seq);
        return;
    }
    spec_of_.erase(seq);
    if (joblog_) {
        map::JoblogEntry e;
        e.seq = seq + 1;
        e.id = s.id;
        e.exit_code = s.exit_code;
        e.signal = s.signal;
        e.started_at_ms = s.started_at_ms;
        e.duration_ms = s.duration_ms();
        e.command = map::joblog_command(s.argv, s.shell);
        if (auto r = joblog_->write(e); !r) {
            joblog_failed(r.error());
        }
    }
    int code = proto::mirror_exit_code(s);
    // Tasks that the map itself cancelled (a halt, Ctrl-C) do not speak for its exit code.
    bool cancelled_by_us = stopping() && s.state == proto::TaskState::cancelled;
    ++(s.state == proto::TaskState::cancelled ? cancelled_ : code == 0 ? succeeded_ : failed_);
    Finished f;
    if (ctx_.global.json) {
        f.json_line = proto::dump_json(task) + "\n";
    } else {
        f.stderr_text = unexplained_end(s);
        f.stdout_path = std::move(s.stdout_path);
        f.stderr_path = std::move(s.stderr_path);
    }
    settle(seq, code, !cancelled_by_us, std::move(f));
}

bool MapRun::cancelled_by_restart(const proto::TaskStatus& s) const {
    // PROTOCOL.md (pool.set): a daemon that comes back after a crash cancels what was still queued in the
    // transient pools it finds in its journal, with this error. Never started, so never run twice.
    return s.state == proto::TaskState::cancelled && s.attempts == 0 && !stopping() && s.error &&
           s.error->find("the daemon restarted") != std::string::npos;
}

void MapRun::drop_resubmits() {
    while (!resubmit_.empty()) {
        uint64_t seq = resubmit_.front();
        resubmit_.pop_front();
        spec_of_.erase(seq);
        ++cancelled_;
        settle(seq, exit_code::mpctl_failed, false, Finished{});  // as a cancelled task mirrors
    }
}

void MapRun::unrunnable_item(size_t number) {
    // As a command that cannot be executed (126): the item fails, the others run (GNU parallel warns and
    // goes on). Only a line of stdin can hold a NUL (the words after ::: are C strings): its number is
    // the line's.
    std::string message = "line " + std::to_string(number) +
                          ": the item contains a NUL byte, which no argument can hold; not run";
    Finished f;
    if (ctx_.global.json) {
        json line = {{"error", {{"message", message}, {"exit_code", exit_code::cannot_execute}}},
                     {"line", number}};
        f.json_line = proto::dump_json(line) + "\n";
    }
    f.stderr_text = "mpctl: " + message + "\n";
    ++unrunnable_failures_;
    ++failed_;
    settle(next_seq_++, exit_code::cannot_execute, true, std::move(f));
    if (own_pool_ && !halted_ && !stopping() && halt_.when != map::HaltPolicy::When::never) {
        set_own_pool();  // nothing of the map runs at this barrier: the next tasks see the new threshold
    }
}

void MapRun::settle(uint64_t seq, int code, bool counts, Finished f) {
    ++done_;
    if (counts) {
        first_.add_code(seq, code);
        if (code != 0) {
            ++failures_;
            if (!halted_ && halt_.triggered(static_cast<int>(failures_))) {
                halt();
            }
        }
    }
    if (o_.unordered) {
        results_.emit(f);
        return;
    }
    reorder_.add(seq, std::move(f));
    while (auto next = reorder_.pop()) {
        results_.emit(*next);
    }
}

void MapRun::halt() {
    halted_ = true;
    // now: stop everything; soon: cancel what has not started, let the running ones finish.
    force_cancel_ = halt_.when == map::HaltPolicy::When::now;
    cancel_all(force_cancel_);
}

void MapRun::interrupt(int signo) {
    if (stop_signal_ != 0) {
        // A second one: the user wants the prompt back now, not once the daemon has stopped the tasks
        // (it does so all the same, and nothing of ours is left to flush or unwind: results went out
        // as they came, the joblog line by line), so leave at once instead of unwinding to main.
        progress_.clear();
        std::_Exit(128 + stop_signal_);
    }
    stop_signal_ = signo;
    force_cancel_ = true;
    cancel_all(true);
}

void MapRun::cancel_all(bool force) {
    drop_resubmits();
    if (!client_ || seq_of_.empty()) {
        return;
    }
    json ids = json::array();
    for (const auto& [id, seq] : seq_of_) {
        ids.push_back(id);
    }
    try {
        client_->send("task.cancel", {{"ids", ids}, {"force", force}});
    } catch (const CliError&) {
        // The connection is gone: nothing more to do from here.
    }
}

// Nobody reads the results any more: stop the map as Ctrl-C would, and exit 128+SIGPIPE.
void MapRun::stdout_closed() {
    if (stop_signal_ == 0) {
        stop_signal_ = SIGPIPE;
    }
    force_cancel_ = true;
    cancel_all(true);
}

void MapRun::joblog_failed(const common::Error& e) const {
    throw CliError(exit_code::mpctl_failed,
                   "--joblog: cannot write " + o_.joblog + ": " + std::strerror(e.err));
}

}  // namespace mpctl::cli
