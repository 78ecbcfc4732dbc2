#pragma once
// MapRun: one `mpctl map`, like Pool.map / imap_unordered / starmap, xargs -P and GNU parallel.
//
// One event loop (map_run.cpp) over the daemon connection, mpctl's stdin (when the items come from there)
// and a self-pipe for signals. The map gets a pool of its own, sized -j, and keeps a window of submitted
// but unfinished tasks larger than -j, refilled with task.submit_batch as completions arrive
// (map_window.cpp), so the daemon always has the next task queued and starts it the moment a slot frees
// (with --pool, the user's pool is shared, so the window is -j itself). Completions arrive as
// task.completed notifications of one task.as_completed per batch (map_completions.cpp): a finished
// task's output is copied from its stdout_path/stderr_path files, whole, in input order (the later ones
// wait as ids and paths; their output stays on disk) or in completion order with --unordered; a halt, a
// signal or a closed stdout cancels what is left.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/map/command_template.hpp>
#include <mpctl/cli/map/halt.hpp>
#include <mpctl/cli/map/items.hpp>
#include <mpctl/cli/map/joblog.hpp>
#include <mpctl/cli/map/progress_bar.hpp>
#include <mpctl/cli/map/reorder.hpp>
#include <mpctl/cli/map/results.hpp>
#include <mpctl/cli/reconnect.hpp>
#include <mpctl/cli/task_exit.hpp>
#include <mpctl/cli/task_options.hpp>
#include <mpctl/proto/task_status.hpp>

namespace mpctl::cli {

struct MapOptions {
    TaskOptions task;
    int jobs = 0;
    bool unordered = false;
    int chunksize = 1;
    std::string halt;
    std::string joblog;
    std::optional<std::string> colsep;
    bool progress = false;
    bool no_progress = false;
};

class MapRun {
  public:
    // Checks the options and the command (throws CliError(usage)); WORDS is the command line after the
    // options, with the items after ":::" if any.
    MapRun(AppContext& ctx, const MapOptions& o, std::vector<std::string> words);
    MapRun(const MapRun&) = delete;
    MapRun& operator=(const MapRun&) = delete;

    // Runs the map to its end; returns mpctl's exit code.
    int run();

  private:
    using json = nlohmann::json;

    // map_run.cpp: the loop
    void loop();
    void coalesce() const;
    [[nodiscard]] bool stopping() const { return stop_signal_ != 0 || halted_ || results_.stdout_broken(); }
    [[nodiscard]] bool finished() const;
    [[nodiscard]] std::optional<size_t> total_tasks() const;
    // The connection was lost (the daemon died): a new one, the map's pool set again on it, and the tasks
    // not finished yet watched again. A batch whose answer was lost fails the map (never sent twice).
    void resume(const ConnectionLost& lost);

    // map_window.cpp: submitting
    bool maybe_submit();
    void append_task(std::string& out) const;
    // Tasks the restarted daemon cancelled before they started: submitted again (false when the map stops).
    [[nodiscard]] bool cancelled_by_restart(const proto::TaskStatus& s) const;
    // The map stops: what waited to be submitted again settles as cancelled.
    void drop_resubmits();
    void handle(const json& msg);

    // map_completions.cpp: results, halts and interruptions
    void completed(const json& task);
    // Item NUMBER, which holds a NUL byte (no argument can), fails alone, at its place.
    void unrunnable_item(size_t number);
    // pool.set of the map's own transient pool: its size, and the failures after which the daemon halts it.
    void set_own_pool();
    // A result at SEQ: counted (unless COUNTS is false), maybe halting, printed in its turn.
    void settle(uint64_t seq, int code, bool counts, map::Finished f);
    void halt();
    void interrupt(int signo);
    void cancel_all(bool force);
    void stdout_closed();
    [[noreturn]] void joblog_failed(const common::Error& e) const;

    AppContext& ctx_;
    int signal_fd_ = -1;
    const MapOptions& o_;
    map::ProgressBar progress_;
    map::ResultWriter results_;
    std::optional<map::JoblogFile> joblog_;
    map::ItemSource source_ = map::ItemSource::from_words({});
    std::optional<map::CommandTemplate> template_;
    map::HaltPolicy halt_;
    TaskRequest defaults_;
    std::string defaults_text_;
    bool own_pool_ = true;
    std::string pool_;
    std::optional<Client> client_;
    std::optional<Reconnector> reconnector_;
    size_t jobs_ = 1;
    size_t window_ = 1;
    // Over a Slurm pool with room for more than -j: each window is one job array throttled to -j (its tasks'
    // array_throttle), submitted once the one before is over, so that -j holds across arrays.
    bool throttled_ = false;

    std::vector<std::string> chunk_;    // items of the next task, while a chunk fills
    uint64_t next_seq_ = 0;             // the next task's place in input order
    int64_t batch_id_ = 0;              // the task.submit_batch in flight (0: none)
    std::vector<uint64_t> batch_seqs_;  // the places of the batch in flight's tasks, in its order
    size_t items_taken_ = 0;            // items read so far (an item's number, counting from 1)
    // The line of an item with a NUL byte (no argument can hold one): it fails once those before it are
    // done, and nothing after it is sent before.
    std::optional<size_t> unrunnable_;
    size_t unrunnable_failures_ = 0;  // items that failed without a task (the daemon does not count them)
    size_t inflight_ = 0;             // submitted (or being submitted), not finished
    std::unordered_map<int64_t, uint64_t> seq_of_;  // task id -> seq, while unfinished
    // Each submitted task's JSON (its spec in the batch), by seq, while unfinished: a daemon that restarts
    // after a crash cancels what of the map was still queued, and the map submits those again.
    std::unordered_map<uint64_t, std::string> spec_of_;
    std::deque<uint64_t> resubmit_;  // seqs to submit again, before any new item
    bool told_resubmit_ = false;     // the note that they are submitted again, said once
    map::Reorder<map::Finished> reorder_;
    FirstUnsuccessful first_;
    size_t done_ = 0;       // settled: ran to an end, cancelled, or unrunnable
    size_t succeeded_ = 0;  // for the bar, which counts what ran (succeeded_ + failed_), not what was
    size_t failed_ = 0;     // cancelled; failed_ counts every failure, failures_ those that count for a halt
    size_t cancelled_ = 0;
    size_t failures_ = 0;
    bool halted_ = false;
    bool force_cancel_ = false;
    int stop_signal_ = 0;
    bool stdout_is_pipe_ = false;
    std::chrono::steady_clock::time_point started_;
};

}  // namespace mpctl::cli
