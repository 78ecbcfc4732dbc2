#pragma once
// Writing JSON text by hand where nlohmann's serializer is too slow for a hot path (the client's
// environment on every submit, the daemon's output chunks). Produces exactly what nlohmann's dump with
// error_handler_t::replace would: invalid UTF-8 becomes U+FFFD.

#include <string>
#include <string_view>

namespace mpctl::proto {

// Appends S as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view s);

}  // namespace mpctl::proto
