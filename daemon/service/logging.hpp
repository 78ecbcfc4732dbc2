#pragma once
// mpctld's logger, as it runs: on a terminal (timestamped lines), under systemd (sd-daemon(3) priority
// prefixes, no timestamps: the journal keeps its own and files each line under its priority), or
// daemonized (timestamped lines in STATE_DIR/mpctld.log, capped and rotated: log_file.hpp).

#include <cstdint>
#include <memory>
#include <string>

#include <spdlog/formatter.h>

namespace mpctl::daemon {

// True when stderr is systemd's journal: $JOURNAL_STREAM names the device and inode of descriptor 2 (as
// systemd.exec(5) says to check: a child of a service inherits the variable, not the stream); or, without
// $JOURNAL_STREAM, when systemd started us (then it adds the time to whatever it keeps of stderr).
[[nodiscard]] bool stderr_is_journal();

// "<6>MESSAGE": <3> error and critical, <4> warn, <6> info, <7> debug and trace.
[[nodiscard]] std::unique_ptr<spdlog::formatter> journal_formatter();

// The default logger: stderr, lines as stderr_is_journal() wants them, at LEVEL.
void start_logging(const std::string& level);

// Daemonized: descriptor 2 is the log file at PATH now; the default logger writes there, rotating the file
// past MAX_SIZE bytes (0: never) and keeping KEEP rotated files.
void log_to_file(const std::string& path, uint64_t max_size, int keep);

}  // namespace mpctl::daemon
