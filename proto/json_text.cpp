
#include <mpctl/proto/json_text.hpp>

namespace mpctl::proto {

namespace {

// How many bytes of S from I form a valid UTF-8 character (its length), or, when it is not valid, how many
// to skip: the lead byte and the continuation bytes that were still acceptable (nlohmann's decoder then
// emits one U+FFFD and reads the offending byte afresh; so do we).
struct Utf8Step {
    size_t length;
    bool valid;
};

Utf8Step utf8_step(std::string_view s, size_t i) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t need = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c == 0xE0) {
        need = 2;
        lo = 0xA0;  // no overlong forms
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        need = 2;
    } else if (c == 0xED) {
        need = 2;
        hi = 0x9F;  // no surrogates
    } else if (c == 0xF0) {
        need = 3;
        lo = 0x90;  // no overlong forms
    } else if (c >= 0xF1 && c <= 0xF3) {
        need = 3;
    } else if (c == 0xF4) {
        need = 3;
        hi = 0x8F;  // nothing past U+10FFFF
    } else {
        return {1, false};  // not a lead byte
    }
    size_t j = i + 1;
    for (size_t k = 0; k < need; ++k, ++j) {
        if (j >= s.size()) {
            return {j - i, false};
        }
        auto b = static_cast<unsigned char>(s[j]);
        if (b < (k == 0 ? lo : 0x80) || b > (k == 0 ? hi : 0xBF)) {
            return {j - i, false};
        }
    }
    return {j - i, true};
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char k_hex[] = "0123456789abcdef";
    out.reserve(out.size() + s.size() + 2);
    out.push_back('"');
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            Utf8Step step = utf8_step(s, i);
            if (step.valid) {
                out.append(s.data() + i, step.length);
            } else {
                out += "\xEF\xBF\xBD";  // U+FFFD
            }
            i += step.length;
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

}  // namespace mpctl::proto
