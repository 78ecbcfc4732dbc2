#pragma once
// Wall-clock timestamps as the protocol shows them: RFC 3339 UTC with milliseconds.

#include <cstdint>
#include <optional>
#include <string>

namespace mpctl::common {

// Milliseconds since the Unix epoch (system clock).
[[nodiscard]] int64_t now_unix_ms();

// "2026-11-24T20:37:06.123Z"
[[nodiscard]] std::string format_rfc3339_ms(int64_t unix_ms);

// "20261124T203706Z": UTC to the second, without separators, for file names.
[[nodiscard]] std::string format_compact_utc(int64_t unix_ms);

// Parses what format_rfc3339_ms writes (and offsets other than Z, and any number of fraction digits).
[[nodiscard]] std::optional<int64_t> parse_rfc3339_ms(const std::string& text);

// SECONDS as a person writes it, in the units parse_duration_seconds reads: "250ms", "1.5s", "30s", "5m",
// "2h", "1d" (the largest unit that divides it, else seconds with up to three decimals).
[[nodiscard]] std::string format_duration_seconds(double seconds);

// Parses a duration in seconds ("1.5", "30") or with a unit ("250ms", "30s", "5m", "2h", "1d").
// Returns a negative value on malformed input.
[[nodiscard]] double parse_duration_seconds(const std::string& text);

}  // namespace mpctl::common
