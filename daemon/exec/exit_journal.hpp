#pragma once
// The exit journal, STATE_DIR/task-exits: how the exact outcome of a task outlives the daemon that ran it.
//
// When the serving daemon dies, the kernel hands its live tasks to the supervising parent (a child
// subreaper: service/supervisor.hpp). For each one that exits, the supervisor waits for it without reaping
// (WNOWAIT), appends "PID START STATUS\n" here (START: the process's start time in clock ticks since boot,
// /proc/PID/stat's field 22, against pid reuse; STATUS: the wait status, as waitpid(2) gives it), and only
// then reaps it. The daemon that comes back re-adopts the tasks its journal says were running and takes the
// outcome of each that has ended from here. One write(2) of one line with O_APPEND: a reader sees whole
// lines, in order; a line cut short by a full disk is ignored (its task is `lost`).
//
// The file holds records of a previous daemon's tasks only; the daemon empties it once no re-adopted task
// is left (ExitJournal::clear), so it never grows with a long life.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

struct ExitRecord {
    int pid = 0;
    uint64_t start_ticks = 0;  // /proc/PID/stat's starttime
    int wait_status = 0;       // as waitpid(2) gives it: WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG
    friend bool operator==(const ExitRecord&, const ExitRecord&) = default;
};

[[nodiscard]] std::string exit_journal_path(const std::string& state_dir);

// "PID START STATUS\n".
[[nodiscard]] std::string format_exit_record(const ExitRecord& record);
// A line without its '\n'; nullopt if it is not one format_exit_record wrote.
[[nodiscard]] std::optional<ExitRecord> parse_exit_record(std::string_view line);

// The supervisor's side: opens (creating, 0600) the journal for appending.
[[nodiscard]] common::Result<common::UniqueFd> open_exit_journal_for_append(const std::string& path);
// Appends RECORD with one write(2).
[[nodiscard]] common::Result<void> append_exit_record(int fd, const ExitRecord& record);

// The daemon's side: reads the records appended since the last read.
class ExitJournal {
  public:
    explicit ExitJournal(std::string path) : path_(std::move(path)) {}

    // The whole lines appended since the last call (the first call: all of them). A missing file has none.
    [[nodiscard]] std::vector<ExitRecord> read_new();
    // Empties the file (when no re-adopted task is left: nothing more will be appended for them).
    void clear();

  private:
    std::string path_;
    uint64_t offset_ = 0;
};

// Now, in the clock ticks of /proc/PID/stat's starttime (CLOCK_BOOTTIME): what the daemon records when it
// starts a task, to tell that task from a later process with its pid. A vDSO call: free at spawn time.
[[nodiscard]] uint64_t boottime_ticks_now();

}  // namespace mpctl::daemon
