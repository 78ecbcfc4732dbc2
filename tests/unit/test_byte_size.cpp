#include <catch2/catch.hpp>

#include <mpctl/common/byte_size.hpp>

using mpctl::common::parse_byte_size;

TEST_CASE("byte sizes take binary units with or without B", "[unit][byte_size]") {
    CHECK(parse_byte_size("0") == 0u);
    CHECK(parse_byte_size("4096") == 4096u);
    CHECK(parse_byte_size("64K") == 64u * 1024);
    CHECK(parse_byte_size("64k") == 64u * 1024);
    CHECK(parse_byte_size("10M") == 10u * 1024 * 1024);
    CHECK(parse_byte_size("10MB") == 10u * 1024 * 1024);
    CHECK(parse_byte_size("2GiB") == 2ull * 1024 * 1024 * 1024);
    CHECK(parse_byte_size("1.5G") == 1536ull * 1024 * 1024);
    CHECK(parse_byte_size("1T") == 1ull << 40);
    CHECK(parse_byte_size("12B") == 12u);
}

TEST_CASE("things that are not sizes are refused", "[unit][byte_size]") {
    CHECK_FALSE(parse_byte_size(""));
    CHECK_FALSE(parse_byte_size("M"));
    CHECK_FALSE(parse_byte_size("-1"));
    CHECK_FALSE(parse_byte_size("10X"));
    CHECK_FALSE(parse_byte_size("10 M"));
    CHECK_FALSE(parse_byte_size("1.2.3"));
    CHECK_FALSE(parse_byte_size("10MM"));
    CHECK_FALSE(parse_byte_size("99999999999T"));
}
