#pragma once
// LogFileSink: the log of a daemonized mpctld (STATE_DIR/mpctld.log), capped in size and rotated.
//
// daemonize() points descriptor 2 at the log file, so that what bypasses spdlog (a sanitizer's report, an
// abort message, a library's complaint) lands there too. The sink keeps that true: it writes to descriptor
// 2 itself, and when a line would take the file past MAX_SIZE it renames mpctld.log to mpctld.log.1
// (.1 to .2 and so on, the oldest past KEEP dropped), opens a fresh mpctld.log and dup2s it onto
// descriptor 2. A rename and an open: cheap enough to do inline, on whichever thread logs.

#include <cstdint>
#include <mutex>
#include <string>

#include <spdlog/sinks/base_sink.h>

namespace mpctl::daemon {

// Renames PATH.(KEEP-1) to PATH.KEEP, ..., PATH to PATH.1 (with KEEP 0: removes PATH). Missing files are
// skipped; returns false if PATH itself could not be moved aside.
bool rotate_log_files(const std::string& path, int keep);

// The mutex: the loop thread logs, and so, rarely, do the journal's checkpointer and the spawn thread.
class LogFileSink : public spdlog::sinks::base_sink<std::mutex> {
  public:
    // Lines go to FD (2 in mpctld), which is PATH opened for appending. MAX_SIZE 0: never rotated.
    LogFileSink(std::string path, int fd, uint64_t max_size, int keep);

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override;
    void flush_() override {}  // every line is written at once: nothing is buffered

  private:
    void rotate();

    std::string path_;
    int fd_;
    uint64_t max_size_;
    int keep_;
    uint64_t size_ = 0;  // what the file held at the start plus what the sink wrote since
};

}  // namespace mpctl::daemon
