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

}  // namespace mpctl::cli::map
