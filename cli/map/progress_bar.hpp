#pragma once
// ProgressBar: the progress line of `mpctl map` (progress.hpp) kept on stderr while the map runs: redrawn
// at most every 100 ms, fitted to the terminal's width, cleared before a result is printed under it, and
// left in place when the map ends.

#include <chrono>
#include <cstddef>
#include <optional>

namespace mpctl::cli::map {

class ProgressBar {
  public:
    explicit ProgressBar(bool enabled) : enabled_(enabled) {}

    [[nodiscard]] bool enabled() const { return enabled_; }
    // Redraws with DONE of TOTAL tasks (unknown while the items are still coming), unless it was drawn less
    // than 100 ms ago and FORCE is not set.
    void draw(size_t done, std::optional<size_t> total, bool force = false);
    // Takes the line away, so that output can be written where it was.
    void clear();
    // The last state stays on the terminal, on its own line, with SUMMARY (outcome_summary) under it.
    void finish(size_t done, std::optional<size_t> total, const std::string& summary = "");

  private:
    bool enabled_;
    bool drawn_ = false;
    bool shown_ = false;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace mpctl::cli::map
