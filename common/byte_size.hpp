#pragma once
// Sizes on the command line: "4096", "64K", "10M", "1.5G", "2GiB" (powers of 1024, as head(1) and
// ulimit use them; a trailing "B" or "iB" is allowed).

#include <cstdint>
#include <optional>
#include <string_view>

namespace mpctl::common {

// The size in bytes; nullopt for anything that is not a size, or above 2^63.
[[nodiscard]] std::optional<uint64_t> parse_byte_size(std::string_view text);

}  // namespace mpctl::common
