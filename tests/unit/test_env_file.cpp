#include <catch2/catch.hpp>

#include <mpctl/common/env_file.hpp>

using mpctl::common::EnvEntries;
using mpctl::common::parse_env_file;

TEST_CASE("an env file gives its entries in order, skipping blanks and comments", "[unit][env_file]") {
    auto r = parse_env_file("# settings\nA=1\n\n  B = two words \r\nexport C=3\n#D=4\nA=again");
    REQUIRE(r);
    CHECK(*r == EnvEntries{{"A", "1"}, {"B", "two words"}, {"C", "3"}, {"A", "again"}});
}

TEST_CASE("env file values lose matching quotes and are never expanded", "[unit][env_file]") {
    auto r =
        parse_env_file("S='$HOME and \\n'\nD=\"say \\\"hi\\\"\\nback\\\\slash\"\nP=$PATH\nE=\nQ=\"\"\nH=a#b");
    REQUIRE(r);
    CHECK(*r == EnvEntries{{"S", "$HOME and \\n"},
                           {"D", "say \"hi\"\nback\\slash"},
                           {"P", "$PATH"},
                           {"E", ""},
                           {"Q", ""},
                           {"H", "a#b"}});
}

TEST_CASE("a malformed env file line is reported by number", "[unit][env_file]") {
    CHECK(parse_env_file("A=1\nnot an assignment\n").error().message() == "line 2: expected KEY=VALUE");
    CHECK(parse_env_file("=value").error().message() == "line 1: '' is not a variable name");
    CHECK(parse_env_file("1A=x").error().message() == "line 1: '1A' is not a variable name");
    CHECK(parse_env_file("A B=x").error().message() == "line 1: 'A B' is not a variable name");
    CHECK(parse_env_file("\n\nA=\"open").error().message() == "line 3: unterminated quote");
    CHECK(parse_env_file(std::string_view("A=x\0y", 5)).error().message() == "line 1: NUL byte in the value");
}

TEST_CASE("an empty env file has no entries", "[unit][env_file]") {
    auto r = parse_env_file("");
    REQUIRE(r);
    CHECK(r->empty());
}
