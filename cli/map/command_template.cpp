#include <mpctl/cli/map/command_template.hpp>
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

std::string column_of(std::string_view item, const std::optional<std::string>& colsep, int n) {
    int index = 1;
    if (colsep) {
        size_t start = 0;
        for (;;) {
            size_t end = item.find(*colsep, start);
            if (index == n) {
                return std::string(item.substr(start, end == std::string_view::npos ? end : end - start));
            }
            if (end == std::string_view::npos) {
                return {};
            }
            start = end + colsep->size();
            ++index;
        }
    }
    size_t pos = 0;
    for (;;) {
        pos = item.find_first_not_of(" \t", pos);
        if (pos == std::string_view::npos) {
            return {};
        }
        size_t end = item.find_first_of(" \t", pos);
        if (index == n) {
            return std::string(item.substr(pos, end == std::string_view::npos ? end : end - pos));
        }
        if (end == std::string_view::npos) {
            return {};
        }
        pos = end;
        ++index;
    }
}

CommandTemplate::CommandTemplate(const std::vector<std::string>& words, TemplateOptions options)
    : options_(std::move(options)) {
    if (words.empty()) {
        throw std::invalid_argument("no command given (e.g. `mpctl map -- gzip ::: a.txt b.txt`)");
    }
    if (options_.colsep && options_.colsep->empty()) {
        throw std::invalid_argument("--colsep: must not be empty");
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
        std::string value = s.column == 0 ? item : column_of(item, options_.colsep, s.column);
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
        out.insert(out.end(), items.begin(), items.end());
    }
    return out;
}

std::string CommandTemplate::script(const std::vector<std::string>& items) const {
    std::string quoted_all;
    for (const auto& item : items) {
        quoted_all += (quoted_all.empty() ? "" : " ") + common::shell_quote(item);
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
