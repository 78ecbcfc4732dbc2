#pragma once
// Reading UTF-8 strictly (no overlong forms, no surrogates, nothing past U+10FFFF), one character at a time:
// what is not valid is a byte to escape, for JSON (proto/json_text) or for a terminal (terminal_text).

#include <cstddef>
#include <string_view>

namespace mpctl::common {

// How many bytes of S from I form a valid UTF-8 character (its length), or, when it is not valid, that the
// byte at I is not the start of one (it is escaped alone, and the next is looked at afresh).
struct Utf8Step {
    size_t length;
    bool valid;
};

inline Utf8Step utf8_step(std::string_view s, size_t i) {
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

}  // namespace mpctl::common
