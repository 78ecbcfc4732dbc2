#pragma once
// Signal names and numbers, both ways: "TERM", "SIGTERM", "sigterm" and "15" all mean 15.

#include <optional>
#include <string>

namespace mpctl::common {

// Number for a signal name or decimal number; nullopt if unknown or out of range (0 is not a signal).
[[nodiscard]] std::optional<int> parse_signal(const std::string& text);

// "SIGTERM" for 15; "SIG<n>" for signals without a name (real-time signals).
[[nodiscard]] std::string signal_name(int signo);

}  // namespace mpctl::common
