#pragma once
// Base64 (RFC 4648, with padding): how binary payloads travel in JSON.

#include <optional>
#include <string>
#include <string_view>

namespace mpctl::common {

[[nodiscard]] std::string base64_encode(std::string_view data);
// nullopt on characters outside the alphabet or bad padding; whitespace is not accepted.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

}  // namespace mpctl::common
