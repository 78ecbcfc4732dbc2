#include <mpctl/common/shell_quote.hpp>

namespace mpctl::common {

namespace {

bool is_safe(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == '/' || c == ',' || c == ':' || c == '@' || c == '%' || c == '+' ||
           c == '=';
}

}  // namespace

std::string shell_quote(std::string_view word) {
    bool safe = !word.empty();
    for (char c : word) {
        safe = safe && is_safe(c);
    }
    if (safe) {
        return std::string(word);
    }
    // Inside single quotes nothing is special but the quote itself, which is closed, escaped and reopened.
    std::string out;
    out.reserve(word.size() + 2);
    out.push_back('\'');
    for (char c : word) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out.push_back(c);
        }
    }
    out.push_back('\'');
    return out;
}

}  // namespace mpctl::common
