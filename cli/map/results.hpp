#pragma once
// ResultWriter: how `mpctl map` prints a finished task: its stdout file to mpctl's stdout and its stderr
// file to mpctl's stderr, whole and never interleaved with another task's (or, with --json, its status
// line). The files are copied from where the daemon captured them, in chunks; nothing of the output
// passes through the daemon. Once stdout's reader is gone (`mpctl map ... | head`), nothing more is
// printed and the map hears of it.

#include <functional>
#include <string>
#include <string_view>

namespace mpctl::cli::map {

// A finished task's result, waiting for its turn (input order) or printed at once (--unordered).
struct Finished {
    std::string stdout_path;
    std::string stderr_path;
    std::string json_line;    // with --json, instead of the files
    std::string stderr_text;  // said on stderr after them (an item that could not run)
};

class ResultWriter {
  public:
    // BEFORE_OUTPUT runs before anything is written (the progress bar makes way); ON_STDOUT_CLOSED once,
    // when a write to stdout fails.
    ResultWriter(std::function<void()> before_output, std::function<void()> on_stdout_closed)
        : before_output_(std::move(before_output)), on_stdout_closed_(std::move(on_stdout_closed)) {}

    void emit(const Finished& f);
    // Stdout's reader is gone (seen by a failed write, or reported by the map's poll).
    void stdout_closed();
    [[nodiscard]] bool stdout_broken() const { return broken_; }

  private:
    // Copies the file at PATH to FD; a missing or empty file (a task that never started) is no output.
    void copy_file(const std::string& path, int fd);
    bool write_or_stop(int fd, std::string_view bytes);

    std::function<void()> before_output_;
    std::function<void()> on_stdout_closed_;
    bool broken_ = false;
};

}  // namespace mpctl::cli::map
