#pragma once
// Man pages in roff (man(7) macros), as pure string functions: mpctl(1) (`mpctl __man`) and mpctld(8)
// (`mpctld --help-man`) are written with these from their CLI11 definitions (roff_cli11.hpp) and hand-written
// sections in a small markup (render).

#include <string>
#include <string_view>
#include <vector>

namespace mpctl::common::roff {

// TEXT as roff prints it literally, on a text line or as a macro argument: a backslash as \e, a hyphen as
// \- (so that options stay searchable and copyable), ' and ` as \(aq and \(ga (not typographic quotes),
// '"' as \(dq, anything past ASCII as \[uXXXX], a '.' or '\'' at the start of a line made text with \&,
// and a line made only of spaces empty.
[[nodiscard]] std::string escape(std::string_view text);
// escape(), except that each `code` (help texts write commands so) is set in bold instead of quoted.
[[nodiscard]] std::string text(std::string_view source);

// .TH NAME SECTION "" SOURCE MANUAL (no date: the same binary writes the same page), then .nh and .ad l:
// neither hyphenated nor justified, so that options, paths and variables stay whole.
[[nodiscard]] std::string title(std::string_view name, std::string_view section, std::string_view source,
                                std::string_view manual);
// .SH "NAME" and .SS "NAME".
[[nodiscard]] std::string section(std::string_view name);
[[nodiscard]] std::string subsection(std::string_view name);
// .PP, then BODY (as text(); each line of BODY a line of the paragraph, blank ones dropped).
[[nodiscard]] std::string paragraph(std::string_view body);
// \fBTEXT\fR and \fITEXT\fR, TEXT escaped.
[[nodiscard]] std::string bold(std::string_view text);
[[nodiscard]] std::string italic(std::string_view text);

// One option or argument of a command: "-s,--shared" (CLI11's comma-separated names), what its value is
// called ("S", "TEXT:{a,b}"; empty for a flag) and its help.
struct Option {
    std::string names;
    std::string value;
    std::string help;
};
// .TP, the names in bold (", " between them) and the value in italics, then the help (as text()).
[[nodiscard]] std::string option(const Option& o);

// Hand-written sections in a small markup, to roff: a line starting with '.' is a macro whose arguments
// are escaped (quotes kept); any other line is escaped text; in both, `code` is set in bold; empty lines
// are dropped (paragraphs are the macros' business).
[[nodiscard]] std::string render(std::string_view source);

}  // namespace mpctl::common::roff
