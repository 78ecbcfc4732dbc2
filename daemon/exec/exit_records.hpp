#pragma once
// ExitRecords: what a restarted daemon learns from the exit journal (exit_journal.hpp) about the processes
// it re-adopts, and the rule that tells a journaled task's process from a later one with the same pid.
// Loop thread only.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <mpctl/daemon/exec/exit_journal.hpp>

namespace mpctl::daemon {

// Whether a process whose /proc/PID/stat starttime is ACTUAL is the one a daemon journaled as started at
// RECORDED (boottime_ticks_now() read just before its clone, SpawnedChild::start_ticks). The clone comes
// after the clock read, so ACTUAL is normally RECORDED or a tick later; one tick below absorbs the two
// clocks' rounding, and a few seconds above absorb a loaded machine that delays the clone. A later process
// with the same pid would have to get it within that window: the whole pid space would have to wrap in
// seconds, and again after the journaled one ended.
[[nodiscard]] bool started_as_recorded(uint64_t recorded, uint64_t actual);

class ExitRecords {
  public:
    explicit ExitRecords(std::string journal_path) : journal_(std::move(journal_path)) {}

    // The wait status the journal holds for PID started at START_TICKS (started_as_recorded), reading what
    // was appended since the last look if the records read so far do not have it.
    [[nodiscard]] std::optional<int> wait_status(int pid, uint64_t start_ticks);
    // Empties the journal and forgets its records: no re-adopted process is left to need them.
    void clear();

  private:
    [[nodiscard]] std::optional<int> find(int pid, uint64_t start_ticks) const;

    ExitJournal journal_;
    std::vector<ExitRecord> records_;  // everything read since the last clear
};

}  // namespace mpctl::daemon
