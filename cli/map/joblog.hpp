#pragma once
// The --joblog of `mpctl map`: a TSV file in the spirit of GNU parallel's, one header line and then one line
// per finished task, in completion order:
//   Seq  Id  Exitval  Signal  Starttime  JobRuntime  Command
// Seq is the task's place in the map (1-based, input order), Id its task id, Exitval its exit code (-1 when
// it has none: killed by a signal, or cancelled before it started), Signal the signal that killed it (0:
// none), Starttime Unix seconds with milliseconds (0.000 if it never started), JobRuntime seconds with
// milliseconds, Command the argv shell-quoted and joined by spaces (or the --shell script), with backslash,
// tab, newline and carriage return written as \\, \t, \n and \r so that a line stays a line.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::cli::map {

struct JoblogEntry {
    uint64_t seq = 0;
    int64_t id = 0;
    std::optional<int> exit_code;
    std::optional<int> signal;
    std::optional<int64_t> started_at_ms;  // Unix ms
    std::optional<int64_t> duration_ms;
    std::string command;  // as joblog_command made it
};

[[nodiscard]] std::string joblog_header();
[[nodiscard]] std::string joblog_line(const JoblogEntry& entry);
// The Command column for an argv task (or a shell script when ARGV is nullopt).
[[nodiscard]] std::string joblog_command(const std::optional<std::vector<std::string>>& argv,
                                         const std::optional<std::string>& shell);

// The file itself: created (or emptied) with its header, and each line written whole as its task finishes,
// so that `tail -f` sees every task and a map that is killed leaves a complete log of what finished.
class JoblogFile {
  public:
    [[nodiscard]] static common::Result<JoblogFile> create(const std::string& path);
    [[nodiscard]] common::Result<void> write(const JoblogEntry& entry);

  private:
    explicit JoblogFile(common::UniqueFd fd) : fd_(std::move(fd)) {}
    common::UniqueFd fd_;
};

}  // namespace mpctl::cli::map
