#include <cstdlib>
#include <sys/ioctl.h>

#include <mpctl/common/shell_quote.hpp>
#include <mpctl/common/terminal_text.hpp>
#include <mpctl/common/utf8.hpp>

namespace mpctl::common {

namespace {

constexpr char k_hex[] = "0123456789abcdef";

void append_hex(std::string& out, unsigned char c) {
    out += "\\x";
    out.push_back(k_hex[c >> 4]);
    out.push_back(k_hex[c & 0xF]);
}

void append_control(std::string& out, unsigned char c) {
    switch (c) {
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
        case 0x1B:
            out += "\\e";
            break;
        default:
            append_hex(out, c);
    }
}

// Walks TEXT, handing each piece to one of three: plain bytes (printable ASCII, or a whole printable UTF-8
// character), a control character, a byte that is not UTF-8.
template <class Plain, class Control, class Invalid>
void walk(std::string_view text, Plain plain, Control control, Invalid invalid) {
    size_t i = 0;
    while (i < text.size()) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7F) {
            control(c);
            ++i;
        } else if (c < 0x80) {
            plain(text.substr(i, 1));
            ++i;
        } else {
            Utf8Step step = utf8_step(text, i);
            if (!step.valid) {
                invalid(c);
                ++i;
            } else if (c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0) {
                // U+0080..U+009F, the C1 controls: some terminals act on them as on ESC sequences.
                invalid(c);
                invalid(static_cast<unsigned char>(text[i + 1]));
                i += 2;
            } else {
                plain(text.substr(i, step.length));
                i += step.length;
            }
        }
    }
}

bool needs_escapes(std::string_view text) {
    bool needs = false;
    walk(
        text, [](std::string_view) {}, [&](unsigned char) { needs = true; },
        [&](unsigned char) { needs = true; });
    return needs;
}

}  // namespace

std::string terminal_text(std::string_view text) {
    if (!needs_escapes(text)) {
        return std::string(text);
    }
    std::string out;
    out.reserve(text.size() + 8);
    walk(
        text, [&](std::string_view s) { out += s; }, [&](unsigned char c) { append_control(out, c); },
        [&](unsigned char c) { append_hex(out, c); });
    return out;
}

std::string terminal_word(std::string_view word) {
    if (!needs_escapes(word)) {
        return shell_quote(word);
    }
    std::string out = "$'";
    walk(
        word,
        [&](std::string_view s) {
            if (s == "\\" || s == "'") {
                out.push_back('\\');
            }
            out += s;
        },
        [&](unsigned char c) { append_control(out, c); }, [&](unsigned char c) { append_hex(out, c); });
    out.push_back('\'');
    return out;
}

size_t terminal_columns(int fd, size_t fallback) {
    if (const char* c = std::getenv("COLUMNS"); c != nullptr && std::atoi(c) > 0) {
        return static_cast<size_t>(std::atoi(c));
    }
    struct winsize ws {};
    if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        return ws.ws_col;
    }
    return fallback;
}

}  // namespace mpctl::common
