#pragma once
// "did you mean 'list'?": the known word nearest to a mistyped one, as git suggests a command.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mpctl::common {

// The edit distance between A and B, a swap of two neighbours counting as one edit (`lsit` is 1 from `list`).
[[nodiscard]] size_t edit_distance(std::string_view a, std::string_view b);

// The one of KNOWN that WORD most likely meant: the only one WORD begins (`stat` -> `status`), else the
// nearest within two edits (one for words of up to three letters); nullopt when none is near or two tie.
[[nodiscard]] std::optional<std::string> nearest_word(std::string_view word,
                                                      const std::vector<std::string>& known);

}  // namespace mpctl::common
