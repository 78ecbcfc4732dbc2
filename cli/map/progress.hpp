#pragma once
// The progress line of `mpctl map` on stderr: done/total, a bar, percent, rate and ETA (while the total is
// unknown, stdin not yet at its end: done/? and the rate).

#include <cstddef>
#include <optional>
#include <string>

namespace mpctl::cli::map {

// One line without '\r' or '\n', at most WIDTH columns (when WIDTH allows the numbers at all).
[[nodiscard]] std::string progress_line(size_t done, std::optional<size_t> total, double elapsed_s,
                                        size_t width = 80);

// How a map that did not simply succeed ended, for the line under its bar: "5 succeeded, 2 failed,
// 13 cancelled, 4 not started" (the counts that are not zero; NOT_STARTED: items never submitted, when
// the total is known). Empty when every item succeeded.
[[nodiscard]] std::string outcome_summary(size_t succeeded, size_t failed, size_t cancelled,
                                          size_t not_started);

}  // namespace mpctl::cli::map
