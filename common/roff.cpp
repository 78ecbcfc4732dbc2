#include <cstdint>
#include <cstdio>

#include <mpctl/common/roff.hpp>

namespace mpctl::common::roff {

namespace {

// Appends the code point that starts at TEXT[I] (UTF-8; a stray byte as itself) as \[uXXXX], and moves I
// past it.
void append_non_ascii(std::string& out, std::string_view text, size_t& i) {
    auto byte = [&](size_t k) {
        return static_cast<unsigned char>(text[k]);
    };
    unsigned char b = byte(i);
    size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    uint32_t cp = len == 4 ? b & 0x07u : len == 3 ? b & 0x0Fu : len == 2 ? b & 0x1Fu : b;
    bool ok = len > 1 && i + len <= text.size();
    for (size_t k = 1; ok && k < len; ++k) {
        ok = (byte(i + k) & 0xC0u) == 0x80u;
        cp = (cp << 6) | (byte(i + k) & 0x3Fu);
    }
    if (!ok) {
        len = 1;
        cp = b;  // not UTF-8: taken as Latin-1, as groff would
    }
    char buf[16];
    std::snprintf(buf, sizeof buf, "\\[u%04X]", static_cast<unsigned>(cp));
    out += buf;
    i += len - 1;
}

// escape(), and with CODE_BOLD each `...` in bold instead of its backticks.
std::string escape_text(std::string_view text, bool code_bold, bool keep_quotes) {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    bool line_start = true;
    bool in_code = false;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (line_start && (c == '.' || c == '\'')) {
            out += "\\&";
        }
        line_start = false;
        switch (c) {
            case '\\':
                out += "\\e";
                break;
            case '-':
                out += "\\-";
                break;
            case '\'':
                out += "\\(aq";
                break;
            case '"':
                out += keep_quotes ? "\"" : "\\(dq";
                break;
            case '`':
                if (code_bold) {
                    out += in_code ? "\\fR" : "\\fB";
                    in_code = !in_code;
                } else {
                    out += "\\(ga";
                }
                break;
            case '\n':
                if (in_code) {
                    out += "\\fR";  // a font change does not outlive its line
                    in_code = false;
                }
                // a line of spaces only would be a blank line to roff
                while (!out.empty() && out.back() == ' ') {
                    out.pop_back();
                }
                out += '\n';
                line_start = true;
                break;
            default:
                if (static_cast<unsigned char>(c) >= 0x80) {
                    append_non_ascii(out, text, i);
                } else {
                    out += c;
                }
        }
    }
    if (in_code) {
        out += "\\fR";
    }
    return out;
}

// A macro argument in double quotes.
std::string quoted(std::string_view text) {
    return "\"" + escape(text) + "\"";
}

}  // namespace

std::string escape(std::string_view text) {
    return escape_text(text, false, false);
}

std::string text(std::string_view source) {
    return escape_text(source, true, false);
}

std::string title(std::string_view name, std::string_view section, std::string_view source,
                  std::string_view manual) {
    return ".TH " + quoted(name) + " " + quoted(section) + " \"\" " + quoted(source) + " " + quoted(manual) +
           "\n.nh\n.ad l\n";
}

std::string section(std::string_view name) {
    return ".SH " + quoted(name) + "\n";
}

std::string subsection(std::string_view name) {
    return ".SS " + quoted(name) + "\n";
}

std::string paragraph(std::string_view body) {
    std::string out = ".PP\n";
    size_t start = 0;
    while (start < body.size()) {
        size_t end = body.find('\n', start);
        if (end == std::string_view::npos) {
            end = body.size();
        }
        std::string_view line = body.substr(start, end - start);
        if (line.find_first_not_of(' ') != std::string_view::npos) {
            out += text(line) + "\n";
        }
        start = end + 1;
    }
    return out;
}

std::string bold(std::string_view text) {
    return "\\fB" + escape(text) + "\\fR";
}

std::string italic(std::string_view text) {
    return "\\fI" + escape(text) + "\\fR";
}

std::string option(const Option& o) {
    std::string tag;
    size_t start = 0;
    while (start <= o.names.size()) {
        size_t end = o.names.find(',', start);
        if (end == std::string::npos) {
            end = o.names.size();
        }
        std::string_view name = std::string_view(o.names).substr(start, end - start);
        if (!name.empty()) {
            tag += (tag.empty() ? "" : ", ") + bold(name);
        }
        start = end + 1;
    }
    std::string_view value = o.value;
    while (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
    }
    if (!value.empty()) {
        tag += " " + italic(value);
    }
    std::string out = ".TP\n" + (tag.empty() ? std::string("\\&") : tag) + "\n";
    std::string help = text(o.help);
    out += help.empty() ? std::string("\\&") : help;
    return out + "\n";
}

std::string render(std::string_view source) {
    std::string out;
    size_t start = 0;
    while (start < source.size()) {
        size_t end = source.find('\n', start);
        if (end == std::string_view::npos) {
            end = source.size();
        }
        std::string_view line = source.substr(start, end - start);
        start = end + 1;
        if (line.find_first_not_of(' ') == std::string_view::npos) {
            continue;
        }
        if (line.front() == '.') {
            size_t space = line.find(' ');
            out += line.substr(0, space);
            if (space != std::string_view::npos) {
                out += " " + escape_text(line.substr(space + 1), true, true);
            }
        } else {
            out += escape_text(line, true, false);
        }
        out += '\n';
    }
    return out;
}

}  // namespace mpctl::common::roff
