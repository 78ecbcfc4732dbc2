#include <optional>

#include <mpctl/common/env_file.hpp>

namespace mpctl::common {

namespace {

std::string_view trim(std::string_view s) {
    size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) {
        return {};
    }
    size_t e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

bool valid_key(std::string_view key) {
    if (key.empty() || (key[0] >= '0' && key[0] <= '9')) {
        return false;
    }
    for (char c : key) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '.' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

// VALUE without its quotes; nullopt for an opening quote that is never closed.
std::optional<std::string> unquote(std::string_view value) {
    if (value.empty() || (value[0] != '"' && value[0] != '\'')) {
        return std::string(value);
    }
    char q = value[0];
    if (value.size() < 2 || value.back() != q) {
        return std::nullopt;
    }
    std::string_view inner = value.substr(1, value.size() - 2);
    if (q == '\'') {
        return std::string(inner);
    }
    std::string out;
    out.reserve(inner.size());
    for (size_t i = 0; i < inner.size(); ++i) {
        if (inner[i] == '\\' && i + 1 < inner.size()) {
            char n = inner[i + 1];
            if (n == '"' || n == '\\') {
                out.push_back(n);
                ++i;
                continue;
            }
            if (n == 'n') {
                out.push_back('\n');
                ++i;
                continue;
            }
        }
        out.push_back(inner[i]);
    }
    return out;
}

}  // namespace

Result<EnvEntries> parse_env_file(std::string_view text) {
    EnvEntries out;
    size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        std::string_view t = trim(line);
        if (t.empty() || t[0] == '#') {
            continue;
        }
        if (t.starts_with("export ") || t.starts_with("export\t")) {
            t = trim(t.substr(7));
        }
        size_t eq = t.find('=');
        std::string where = "line " + std::to_string(line_no) + ": ";
        if (eq == std::string_view::npos) {
            return plain_error(where + "expected KEY=VALUE", Errc::invalid);
        }
        std::string_view key = trim(t.substr(0, eq));
        if (!valid_key(key)) {
            return plain_error(where + "'" + std::string(key) + "' is not a variable name", Errc::invalid);
        }
        auto value = unquote(trim(t.substr(eq + 1)));
        if (!value) {
            return plain_error(where + "unterminated quote", Errc::invalid);
        }
        if (value->find('\0') != std::string::npos) {
            return plain_error(where + "NUL byte in the value", Errc::invalid);
        }
        out.emplace_back(std::string(key), std::move(*value));
    }
    return out;
}

}  // namespace mpctl::common
