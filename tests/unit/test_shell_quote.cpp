// POSIX shell quoting (mpctl map --shell, joblogs, status): checked by asking a real /bin/sh to read the
// words back.

#include <cstdio>
#include <string>

#include <catch2/catch.hpp>

#include <mpctl/common/shell_quote.hpp>

using mpctl::common::shell_quote;

namespace {

// What /bin/sh prints for `printf %s QUOTED`.
std::string sh_reads(const std::string& quoted) {
    std::string cmd = "printf %s " + quoted;
    std::FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buf[256];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        out.append(buf, n);
    }
    ::pclose(p);
    return out;
}

}  // namespace

TEST_CASE("shell_quote: safe words stay bare and the rest is single-quoted", "[unit][shell_quote]") {
    CHECK(shell_quote("abc-1.2/x_y") == "abc-1.2/x_y");
    CHECK(shell_quote("") == "''");
    CHECK(shell_quote("a b") == "'a b'");
    CHECK(shell_quote("it's") == R"('it'\''s')");
}

TEST_CASE("shell_quote: the shell reads every quoted word back byte for byte", "[unit][shell_quote]") {
    for (std::string word : {"a b", "it's", "\"double\"", "$HOME", "a;b", "back\\slash", "`date`", "*", "~",
                             "tab\there", "new\nline", "'", "''", "\\'", "!x", "a|b&c>d<e", "#hash", "{}"}) {
        INFO(word);
        CHECK(sh_reads(shell_quote(word)) == word);
    }
}
