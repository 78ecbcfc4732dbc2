#pragma once
// POSIX shell quoting: the text that /bin/sh reads back as exactly one word equal to the input, whatever
// bytes it holds (spaces, quotes, $, `, ;, \, newlines). Words made only of safe characters stay bare.
// Used wherever a command is shown or built for a shell: `mpctl map --shell`, joblogs, `status`.

#include <string>
#include <string_view>

namespace mpctl::common {

[[nodiscard]] std::string shell_quote(std::string_view word);

}  // namespace mpctl::common
