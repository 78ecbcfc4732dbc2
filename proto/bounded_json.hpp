#pragma once
// Parsing JSON a client sent without trusting its shape: nesting is bounded before anything deeper is built
// (nlohmann's own parser recurses once per level, so a line of 260 KB of '[' exhausts the loop thread's
// stack), and the text of a top-level member's number is kept when re-serialising it would not give it back
// (a float: 1e3 prints as 1000.0, 99999999999999999999999 as 9.999999999999999e+22).

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mpctl::proto {

// Deep enough for every message of the protocol (the deepest, a batch of pipelines, nests 7 levels), shallow
// enough that nothing which walks a parsed message recursively can run out of stack.
inline constexpr std::size_t k_max_json_depth = 64;

struct BoundedJson {
    enum class Outcome { ok, syntax_error, too_deep };
    Outcome outcome = Outcome::ok;
    nlohmann::json value;
    // The exact text of the top-level member named by parse_bounded_json's RAW_MEMBER when it is a float
    // (empty otherwise, and when that member is anything else).
    std::string raw_member_text;
};

[[nodiscard]] BoundedJson parse_bounded_json(std::string_view text, std::size_t max_depth = k_max_json_depth,
                                             std::string_view raw_member = {});

}  // namespace mpctl::proto
