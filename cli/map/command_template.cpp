#include <algorithm>
#include <regex.h>

#include <mpctl/cli/map/command_template.hpp>
#include <mpctl/cli/map/items.hpp>
#include <mpctl/common/shell_quote.hpp>

namespace mpctl::cli::map {

namespace {

// Splits TEXT into literal text and placeholders ({} and {N} with N >= 1); anything else is literal.
std::vector<std::pair<std::string, int>> parse_word(std::string_view text) {
    std::vector<std::pair<std::string, int>> out;
    std::string literal;
    size_t i = 0;
    while (i < text.size()) {
        if (text[i] == '{') {
            size_t close = text.find('}', i + 1);
            if (close != std::string_view::npos) {
                std::string_view inner = text.substr(i + 1, close - i - 1);
                bool digits = !inner.empty() && inner.size() <= 6 &&
                              inner.find_first_not_of("0123456789") == std::string_view::npos;
                int column = inner.empty() ? 0 : (digits ? std::stoi(std::string(inner)) : -1);
                if (column >= 0 && !(digits && column == 0)) {
                    if (!literal.empty()) {
                        out.emplace_back(std::move(literal), -1);
                        literal.clear();
                    }
                    out.emplace_back(std::string(), column);
                    i = close + 1;
                    continue;
                }
            }
        }
        literal.push_back(text[i]);
        ++i;
    }
    if (!literal.empty()) {
        out.emplace_back(std::move(literal), -1);
    }
    return out;
}

}  // namespace

namespace {

// The values of a tuple item (several ::: groups), or the item alone.
std::vector<std::string> fields_of(const std::string& item) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t end = item.find(k_field_separator, start);
        out.push_back(item.substr(start, end == std::string::npos ? end : end - start));
        if (end == std::string::npos) {
            return out;
        }
        start = end + 1;
    }
}

bool is_tuple(const std::string& item) {
    return item.find(k_field_separator) != std::string::npos;
}

// ITEM's values appended to OUT as arguments of their own (a tuple gives one per value).
void append_fields(std::vector<std::string>& out, const std::string& item) {
    if (!is_tuple(item)) {
        out.push_back(item);
        return;
    }
    for (auto& f : fields_of(item)) {
        out.push_back(std::move(f));
    }
}

// ITEM for a shell script: each value quoted, joined by spaces.
std::string quoted_fields(const std::string& item) {
    std::string out;
    for (const auto& f : fields_of(item)) {
        out += (out.empty() ? "" : " ") + common::shell_quote(f);
    }
    return out;
}

}  // namespace

struct ColumnSeparator::Compiled {
    regex_t re;
};

ColumnSeparator::ColumnSeparator(const std::string& pattern) {
    if (pattern.empty()) {
        throw std::invalid_argument("--colsep: must not be empty");
    }
    std::string ere;
    for (size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] == '\\' && i + 1 < pattern.size() && pattern[i + 1] == 't') {
            ere.push_back('\t');
            ++i;
        } else {
            ere.push_back(pattern[i]);
        }
    }
    auto compiled = std::make_unique<Compiled>();
    int rc = ::regcomp(&compiled->re, ere.c_str(), REG_EXTENDED);
    if (rc != 0) {
        char why[256];
        ::regerror(rc, &compiled->re, why, sizeof why);
        throw std::invalid_argument("--colsep: not a regular expression: '" + pattern + "': " + why);
    }
    compiled_ = std::move(compiled);
}

ColumnSeparator::~ColumnSeparator() {
    if (compiled_) {
        ::regfree(&compiled_->re);
    }
}

std::string ColumnSeparator::column(const std::string& item, int n) const {
    int index = 1;
    size_t start = 0;   // where the current column begins
    size_t search = 0;  // where to look for the next separator
    for (;;) {
        regmatch_t m{};
        m.rm_so = static_cast<regoff_t>(search);
        m.rm_eo = static_cast<regoff_t>(item.size());
        int flags = REG_STARTEND | (search > 0 ? REG_NOTBOL : 0);
        bool found = false;
        size_t end = item.size();
        size_t next = item.size();
        while (::regexec(&compiled_->re, item.c_str(), 1, &m, flags) == 0) {
            if (m.rm_eo > m.rm_so) {
                found = true;
                end = static_cast<size_t>(m.rm_so);
                next = static_cast<size_t>(m.rm_eo);
                break;
            }
            // A match of nothing splits nothing: look again one byte further.
            if (static_cast<size_t>(m.rm_so) >= item.size()) {
                break;
            }
            m.rm_so = m.rm_so + 1;
            m.rm_eo = static_cast<regoff_t>(item.size());
            flags |= REG_NOTBOL;
        }
        if (index == n) {
            // Each column without the blanks around it, as GNU parallel trims them under --colsep.
            size_t first = item.find_first_not_of(" \t", start);
            if (first == std::string::npos || first >= end) {
                return {};
            }
            size_t last = item.find_last_not_of(" \t", end - 1);
            return item.substr(first, last + 1 - first);
        }
        if (!found) {
            return {};
        }
        start = next;
        search = next;
        ++index;
    }
}

CommandTemplate::CommandTemplate(const std::vector<std::string>& words, TemplateOptions options)
    : options_(std::move(options)) {
    if (words.empty()) {
        throw std::invalid_argument("no command given (e.g. `mpctl map -- gzip ::: a.txt b.txt`)");
    }
    if (options_.colsep) {
        colsep_ = std::make_shared<const ColumnSeparator>(*options_.colsep);
    }
    if (options_.chunksize < 1) {
        options_.chunksize = 1;
    }
    std::vector<std::string> sources = words;
    if (options_.shell) {
        std::string script;
        for (const auto& w : words) {
            script += (script.empty() ? "" : " ") + w;
        }
        sources = {script};
    }
    for (const auto& w : sources) {
        Word word;
        for (auto& [text, column] : parse_word(w)) {
            word.push_back(Segment{std::move(text), column});
            if (column >= 0) {
                has_placeholder_ = true;
                if (options_.chunksize > 1 && column > 0) {
                    throw std::invalid_argument("--chunksize: {" + std::to_string(column) +
                                                "} names one item's column; use {} or no placeholder");
                }
            }
        }
        if (options_.chunksize > 1 && !options_.shell) {
            bool lone = word.size() == 1 && word[0].column == 0;
            for (const auto& s : word) {
                if (s.column == 0 && !lone) {
                    throw std::invalid_argument(
                        "--chunksize: {} must be an argument of its own (it becomes one argument per item)");
                }
            }
        }
        words_.push_back(std::move(word));
    }
}

std::string CommandTemplate::expand(const Word& word, const std::string& item, bool quote) const {
    std::string out;
    for (const auto& s : word) {
        if (s.column < 0) {
            out += s.text;
            continue;
        }
        if (s.column == 0 && is_tuple(item)) {
            // {} of a tuple: its values joined by spaces, as GNU parallel's {}.
            if (quote) {
                out += quoted_fields(item);
            } else {
                std::string joined = item;
                std::replace(joined.begin(), joined.end(), k_field_separator, ' ');
                out += joined;
            }
            continue;
        }
        std::string value;
        if (s.column == 0) {
            value = item;
        } else if (colsep_ && !is_tuple(item)) {
            value = colsep_->column(item, s.column);
        } else {
            // {N} without --colsep: the value from the Nth ::: group ({1}: a lone item itself).
            auto fields = fields_of(item);
            value = static_cast<size_t>(s.column) <= fields.size() ? fields[static_cast<size_t>(s.column) - 1]
                                                                   : "";
        }
        out += quote ? common::shell_quote(value) : value;
    }
    return out;
}

std::vector<std::string> CommandTemplate::argv(const std::vector<std::string>& items) const {
    std::vector<std::string> out;
    out.reserve(words_.size() + (has_placeholder_ ? 0 : items.size()));
    for (const auto& w : words_) {
        if (options_.chunksize > 1 && w.size() == 1 && w[0].column == 0) {
            out.insert(out.end(), items.begin(), items.end());
        } else {
            out.push_back(expand(w, items.empty() ? std::string() : items.front(), false));
        }
    }
    if (!has_placeholder_) {
        for (const auto& item : items) {
            append_fields(out, item);
        }
    }
    return out;
}

std::string CommandTemplate::script(const std::vector<std::string>& items) const {
    std::string quoted_all;
    for (const auto& item : items) {
        quoted_all += (quoted_all.empty() ? "" : " ") + quoted_fields(item);
    }
    if (!has_placeholder_) {
        return words_.front().empty() ? quoted_all : expand(words_.front(), {}, true) + " " + quoted_all;
    }
    if (options_.chunksize > 1) {
        std::string out;
        for (const auto& s : words_.front()) {
            out += s.column < 0 ? s.text : quoted_all;
        }
        return out;
    }
    return expand(words_.front(), items.empty() ? std::string() : items.front(), true);
}

}  // namespace mpctl::cli::map
