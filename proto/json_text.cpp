#include <mpctl/common/utf8.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::proto {

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char k_hex[] = "0123456789abcdef";
    out.reserve(out.size() + s.size() + 2);
    out.push_back('"');
    size_t i = 0;
    while (i < s.size()) {
        // Most of what the daemon writes (paths, argv, environments) is printable ASCII: a run of it is
        // appended at once, not a character at a time.
        size_t plain = i;
        while (plain < s.size()) {
            auto p = static_cast<unsigned char>(s[plain]);
            if (p < 0x20 || p >= 0x80 || p == '"' || p == '\\') {
                break;
            }
            ++plain;
        }
        if (plain > i) {
            out.append(s.data() + i, plain - i);
            i = plain;
            continue;
        }
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            common::Utf8Step step = common::utf8_step(s, i);
            if (step.valid) {
                out.append(s.data() + i, step.length);
                i += step.length;
            } else {
                out += "\\udc";
                out.push_back(k_hex[c >> 4]);
                out.push_back(k_hex[c & 0xF]);
                ++i;
            }
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back(k_hex[c >> 4]);
                    out.push_back(k_hex[c & 0xF]);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
        ++i;
    }
    out.push_back('"');
}

void append_json(std::string& out, const nlohmann::json& value) {
    using Type = nlohmann::json::value_t;
    switch (value.type()) {
        case Type::object: {
            out.push_back('{');
            bool first = true;
            for (const auto& [key, member] : value.items()) {
                if (!first) {
                    out.push_back(',');
                }
                first = false;
                append_json_string(out, key);
                out.push_back(':');
                append_json(out, member);
            }
            out.push_back('}');
            break;
        }
        case Type::array: {
            out.push_back('[');
            bool first = true;
            for (const auto& element : value) {
                if (!first) {
                    out.push_back(',');
                }
                first = false;
                append_json(out, element);
            }
            out.push_back(']');
            break;
        }
        case Type::string:
            append_json_string(out, value.get_ref<const std::string&>());
            break;
        default:  // null, booleans, numbers: ASCII, written as nlohmann writes them
            out += value.dump();
    }
}

std::string dump_json(const nlohmann::json& value) {
    std::string out;
    append_json(out, value);
    return out;
}

namespace {

constexpr std::string_view k_mark = "\xEF\xB7\x90";  // U+FDD0 in UTF-8

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// The code unit of the \uXXXX escape at TEXT[I] (which is the backslash), or -1.
int escape_unit(std::string_view text, size_t i) {
    if (i + 6 > text.size() || text[i + 1] != 'u') {
        return -1;
    }
    int unit = 0;
    for (size_t k = 2; k < 6; ++k) {
        int d = hex_digit(text[i + k]);
        if (d < 0) {
            return -1;
        }
        unit = unit * 16 + d;
    }
    return unit;
}

void restore_strings(nlohmann::json& value) {
    if (value.is_string()) {
        restore_bytes(value.get_ref<std::string&>());
    } else if (value.is_array()) {
        for (auto& element : value) {
            restore_strings(element);
        }
    } else if (value.is_object()) {
        // Keys are const in place: an object with a marked key is rebuilt.
        nlohmann::json rebuilt = nlohmann::json::object();
        for (auto& [key, member] : value.items()) {
            std::string k = key;
            restore_bytes(k);
            restore_strings(member);
            rebuilt[k] = std::move(member);
        }
        value = std::move(rebuilt);
    }
}

}  // namespace

std::optional<std::string> mark_escaped_bytes(std::string_view text) {
    // Outside strings a backslash or U+FDD0 is a syntax error whether rewritten or not, so escapes are
    // followed without knowing where strings are.
    if (text.find("\\u") == std::string_view::npos && text.find(k_mark) == std::string_view::npos) {
        return std::nullopt;
    }
    std::string out;
    bool changed = false;
    bool after_high = false;  // the escape before was the first half of a surrogate pair
    size_t i = 0;
    while (i < text.size()) {
        char c = text[i];
        if (c == '\\' && i + 1 < text.size()) {
            int unit = escape_unit(text, i);
            if (unit >= 0xDC80 && unit <= 0xDCFF && !after_high) {
                out += "\\ufdd0";
                out.append(text.substr(i + 4, 2));
                changed = true;
            } else if (unit == 0xFDD0) {
                out += "\\ufdd0\\ufdd0";
                changed = true;
            } else {
                out.append(text.substr(i, unit >= 0 ? 6 : 2));
            }
            after_high = unit >= 0xD800 && unit <= 0xDBFF;
            i += unit >= 0 ? 6 : 2;
            continue;
        }
        after_high = false;
        if (text.substr(i, k_mark.size()) == k_mark) {
            out += k_mark;
            out += k_mark;
            changed = true;
            i += k_mark.size();
            continue;
        }
        out.push_back(c);
        ++i;
    }
    if (!changed) {
        return std::nullopt;
    }
    return out;
}

void restore_bytes(std::string& s) {
    size_t at = s.find(k_mark);
    if (at == std::string::npos) {
        return;
    }
    std::string out(s, 0, at);
    size_t i = at;
    while (i < s.size()) {
        if (s.compare(i, k_mark.size(), k_mark) != 0) {
            out.push_back(s[i++]);
            continue;
        }
        i += k_mark.size();
        if (s.compare(i, k_mark.size(), k_mark) == 0) {
            out += k_mark;
            i += k_mark.size();
        } else if (i + 2 <= s.size() && hex_digit(s[i]) >= 0 && hex_digit(s[i + 1]) >= 0) {
            out.push_back(static_cast<char>(hex_digit(s[i]) * 16 + hex_digit(s[i + 1])));
            i += 2;
        } else {
            out += k_mark;  // not written by mark_escaped_bytes: left as it was
        }
    }
    s = std::move(out);
}

nlohmann::json parse_json_text(std::string_view text) {
    auto marked = mark_escaped_bytes(text);
    if (!marked) {
        return nlohmann::json::parse(text, nullptr, false);
    }
    nlohmann::json value = nlohmann::json::parse(*marked, nullptr, false);
    if (!value.is_discarded()) {
        restore_strings(value);
    }
    return value;
}

nlohmann::json json_value_from_word(std::string_view word) {
    nlohmann::json parsed = parse_json_text(word);
    return parsed.is_discarded() ? nlohmann::json(std::string(word)) : parsed;
}

}  // namespace mpctl::proto
