#pragma once
// Text from tasks and clients shown on a terminal: a control character would move the cursor or recolour the
// screen, a newline would break a table's row, a byte that is not UTF-8 would print as garbage. Each is
// written as an escape instead (\n, \t, \r, \e, \xNN), as `ls` and bash's `printf %q` do; --json output keeps
// the bytes exactly.

#include <string>
#include <string_view>

namespace mpctl::common {

// TEXT with control characters (C0, DEL, C1) and bytes that are not UTF-8 escaped; a backslash stays as it
// is (scripts are full of them, and the point is a safe screen, not a reversible form).
[[nodiscard]] std::string terminal_text(std::string_view text);

// A word as a shell reads it back, safe on a terminal: shell_quote's form, or bash's $'...' with escapes for
// a word that holds a control character or a byte that is not UTF-8.
[[nodiscard]] std::string terminal_word(std::string_view word);

// How many columns the terminal on FD has: $COLUMNS if set (as ls reads it), else what the terminal says,
// else FALLBACK.
[[nodiscard]] size_t terminal_columns(int fd, size_t fallback);

}  // namespace mpctl::common
