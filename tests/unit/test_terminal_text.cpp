#include <string>

#include <catch2/catch.hpp>

#include <mpctl/common/terminal_text.hpp>

using mpctl::common::terminal_text;
using mpctl::common::terminal_word;

TEST_CASE("terminal_text leaves printable text, UTF-8 and backslashes alone", "[unit][terminal_text]") {
    CHECK(terminal_text("") == "");
    CHECK(terminal_text("echo 'a b' | tr a-z A-Z") == "echo 'a b' | tr a-z A-Z");
    CHECK(terminal_text("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80") ==
          "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80");
    CHECK(terminal_text("a\\nb") == "a\\nb");
}

TEST_CASE("terminal_text escapes control characters, C1 controls and bytes that are not UTF-8",
          "[unit][terminal_text]") {
    CHECK(terminal_text("echo \x1B[41mBG") == "echo \\e[41mBG");
    CHECK(terminal_text("a\nb\tc\rd") == "a\\nb\\tc\\rd");
    CHECK(terminal_text(std::string("\0\x01\x7F", 3)) == "\\x00\\x01\\x7f");
    CHECK(terminal_text("\xC2\x9B"
                        "31m") == "\\xc2\\x9b31m");  // CSI as a C1 control
    CHECK(terminal_text("\xC2\xA0") == "\xC2\xA0");  // no-break space: printable
    CHECK(terminal_text("x\xFFy\xE2\x82") == "x\\xffy\\xe2\\x82");
    for (int c = 0; c < 256; ++c) {
        std::string out = terminal_text(std::string(1, static_cast<char>(c)));
        for (unsigned char o : out) {
            INFO(c);
            CHECK((o >= 0x20 && o < 0x7F));
        }
    }
}

TEST_CASE("terminal_word is shell_quote's word unless it needs escapes, then bash's $'...'",
          "[unit][terminal_text]") {
    CHECK(terminal_word("plain") == "plain");
    CHECK(terminal_word("a b") == "'a b'");
    CHECK(terminal_word("") == "''");
    CHECK(terminal_word("caf\xC3\xA9") == "'caf\xC3\xA9'");
    CHECK(terminal_word("new\nline") == "$'new\\nline'");
    CHECK(terminal_word("\xFF") == "$'\\xff'");
    CHECK(terminal_word("it's\x1B") == "$'it\\'s\\e'");
    CHECK(terminal_word("back\\slash\t") == "$'back\\\\slash\\t'");
}
