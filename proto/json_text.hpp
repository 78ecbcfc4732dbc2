#pragma once
// JSON text that carries bytes. Argv words, environments, paths and map items are bytes (POSIX), JSON strings
// are Unicode: a byte that is not part of valid UTF-8 travels as a lone low surrogate escape, \udc80 to
// \udcff for 0x80 to 0xff, one per byte. That is Python's surrogateescape (os.fsdecode, json.loads and
// json.dumps agree with it), and it is lossless both ways. nlohmann's serializer would replace such bytes
// with U+FFFD and its parser refuses lone surrogates, so every JSON text mpctl writes or reads goes through
// here.
//
// Writing is by hand where nlohmann's serializer is too slow for a hot path anyway (the client's environment
// on every submit, the daemon's output chunks).

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mpctl::proto {

// Appends S as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view s);

// VALUE as compact JSON text (as nlohmann's dump(), with bytes escaped as above).
[[nodiscard]] std::string dump_json(const nlohmann::json& value);
void append_json(std::string& out, const nlohmann::json& value);

// TEXT parsed, its escaped bytes restored; a discarded value if it is not JSON (nlohmann's parse with
// allow_exceptions false). Not for what a client sends the daemon: parse_bounded_json bounds depth.
[[nodiscard]] nlohmann::json parse_json_text(std::string_view text);

// A VALUE of mpctl's command line (a queue's value, a dict's, a ShareableList item): its JSON value if the
// word reads as JSON (42, -1.5, true, null, [1,2], {"a":1}, "text"), else the word itself as a string (text,
// the empty word, 1 2).
[[nodiscard]] nlohmann::json json_value_from_word(std::string_view word);

// For a parser of its own (parse_bounded_json): nlohmann's lexer refuses \udcXY alone, so such an escape is
// rewritten as the noncharacter U+FDD0 and the two hex digits XY, and a U+FDD0 of the text as two of them;
// restore_bytes undoes that in each parsed string. nullopt: TEXT needs no rewriting (the usual case).
[[nodiscard]] std::optional<std::string> mark_escaped_bytes(std::string_view text);
void restore_bytes(std::string& s);

}  // namespace mpctl::proto
