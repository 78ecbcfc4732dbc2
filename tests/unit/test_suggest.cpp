#include <catch2/catch.hpp>

#include <mpctl/common/suggest.hpp>

using mpctl::common::edit_distance;
using mpctl::common::nearest_word;

TEST_CASE("edit distance counts insertions, deletions, changes and swaps of neighbours", "[unit][suggest]") {
    CHECK(edit_distance("", "") == 0);
    CHECK(edit_distance("list", "list") == 0);
    CHECK(edit_distance("lsit", "list") == 1);
    CHECK(edit_distance("log", "logs") == 1);
    CHECK(edit_distance("stauts", "status") == 1);
    CHECK(edit_distance("kitten", "sitting") == 3);
    CHECK(edit_distance("", "run") == 3);
}

TEST_CASE("the nearest command is suggested, a tie or nothing near is not", "[unit][suggest]") {
    const std::vector<std::string> commands{"submit",       "run",    "status", "list",   "wait",
                                            "as-completed", "result", "logs",   "cancel", "kill",
                                            "daemon",       "pool",   "map"};
    CHECK(nearest_word("lsit", commands) == std::optional<std::string>("list"));
    CHECK(nearest_word("log", commands) == std::optional<std::string>("logs"));
    CHECK(nearest_word("stauts", commands) == std::optional<std::string>("status"));
    CHECK(nearest_word("runn", commands) == std::optional<std::string>("run"));
    CHECK(nearest_word("stat", commands) == std::optional<std::string>("status"));  // a prefix of one
    CHECK(nearest_word("stat", {"start", "status", "stop"}) == std::optional<std::string>("status"));
    CHECK(nearest_word("as", commands) == std::optional<std::string>("as-completed"));
    CHECK_FALSE(nearest_word("xyzzy", commands));
    CHECK_FALSE(nearest_word("", commands));
    CHECK(nearest_word("mpa", commands) == std::optional<std::string>("map"));
    CHECK_FALSE(nearest_word("bat", {"cat", "hat"}));  // a tie
    CHECK_FALSE(nearest_word("s", commands));          // the start of status and submit
}
