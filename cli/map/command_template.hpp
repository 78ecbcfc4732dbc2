#pragma once
// The command template of `mpctl map`: the words after `--` with placeholders, turned into one task's
// command for one item (or a chunk of items).
//
// `{}` is the whole item; `{1}`, `{2}`... as GNU parallel has them: with --colsep, its columns, split where
// the regular expression COLSEP matches (a missing column is empty, a leading separator makes an empty first
// one); without, the values of a tuple item (several ::: groups), or the item itself for `{1}`. If no word
// has a placeholder, the item is appended as the last argument (xargs -n1). Without --shell every word stays
// one argument, so nothing in an item is ever interpreted. With --shell the words are joined by spaces into
// one /bin/sh script and every substituted value is shell-quoted, so an item is still one literal word for
// the shell.
//
// With a chunk size above 1, a task gets up to that many items: they are appended as arguments, or replace a
// `{}` that is a word of its own (in a shell script: `{}` becomes the quoted items separated by spaces);
// `{N}` and `{}` inside a longer argv word are refused then, since they name a single item.

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mpctl::cli::map {

struct TemplateOptions {
    bool shell = false;
    std::optional<std::string> colsep;  // nullopt: no columns
    size_t chunksize = 1;
};

// --colsep: a POSIX extended regular expression (GNU parallel's is Perl's: `\t` is read as a tab, and
// glibc knows `\s`, `\S`, `\w`). A match of nothing splits nothing.
class ColumnSeparator {
  public:
    // Throws std::invalid_argument for an empty or invalid PATTERN.
    explicit ColumnSeparator(const std::string& pattern);
    ~ColumnSeparator();
    ColumnSeparator(const ColumnSeparator&) = delete;
    ColumnSeparator& operator=(const ColumnSeparator&) = delete;

    // Column N (1-based) of ITEM, without the spaces and tabs around it; "" if there is none.
    [[nodiscard]] std::string column(const std::string& item, int n) const;

  private:
    struct Compiled;
    std::unique_ptr<Compiled> compiled_;
};

class CommandTemplate {
  public:
    // Throws std::invalid_argument (with a message for the user) on an empty command, an empty --colsep or
    // a placeholder that a chunked map cannot fill.
    CommandTemplate(const std::vector<std::string>& words, TemplateOptions options);

    [[nodiscard]] bool shell() const { return options_.shell; }
    [[nodiscard]] bool has_placeholder() const { return has_placeholder_; }
    // The task's argv (without --shell) for ITEMS (1..chunksize of them).
    [[nodiscard]] std::vector<std::string> argv(const std::vector<std::string>& items) const;
    // The task's script (with --shell) for ITEMS.
    [[nodiscard]] std::string script(const std::vector<std::string>& items) const;

  private:
    struct Segment {
        std::string text;  // literal text when column < 0
        int column = -1;   // 0: the whole item, N: column N
    };
    using Word = std::vector<Segment>;
    [[nodiscard]] std::string expand(const Word& word, const std::string& item, bool quote) const;

    TemplateOptions options_;
    std::shared_ptr<const ColumnSeparator> colsep_;
    std::vector<Word> words_;  // with --shell: one word, the whole script
    bool has_placeholder_ = false;
};

}  // namespace mpctl::cli::map
