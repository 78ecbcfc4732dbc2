#include <cstdint>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include <mpctl/common/time.hpp>

using mpctl::common::format_compact_utc;
using mpctl::common::format_rfc3339_ms;
using mpctl::common::parse_duration_seconds;
using mpctl::common::parse_rfc3339_ms;

namespace {
constexpr int64_t k_t0 = 1795552626123;  // 2026-11-24T20:37:06.123Z
}

TEST_CASE("timestamps are formatted as RFC 3339 UTC with milliseconds", "[unit][time]") {
    CHECK(format_rfc3339_ms(0) == "1970-01-01T00:00:00.000Z");
    CHECK(format_rfc3339_ms(1) == "1970-01-01T00:00:00.001Z");
    CHECK(format_rfc3339_ms(k_t0) == "2026-11-24T20:37:06.123Z");
    CHECK(format_rfc3339_ms(951782400000) == "2000-02-29T00:00:00.000Z");
    CHECK(format_rfc3339_ms(1709251199999) == "2024-02-29T23:59:59.999Z");
    CHECK(format_rfc3339_ms(253402300799999) == "9999-12-31T23:59:59.999Z");
}

TEST_CASE("timestamps are formatted as gmtime_r and printf format them, over four centuries and beyond",
          "[unit][time]") {
    auto reference = [](int64_t unix_ms) {
        time_t secs = static_cast<time_t>(unix_ms / 1000);
        auto ms = static_cast<int>(unix_ms % 1000);
        if (ms < 0) {
            ms += 1000;
            secs -= 1;
        }
        struct tm tm {};
        ::gmtime_r(&secs, &tm);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
        return std::string(buf);
    };
    // Every day's last and first millisecond from 1800 to 2400 (leap days, 1900 and 2100 not leap, 2000
    // and 2400 leap), then spread values across years 0 to 9999 and a few outside them.
    constexpr int64_t day_ms = 86400000;
    for (int64_t day = -62091; day <= 157877; ++day) {
        CHECK(format_rfc3339_ms(day * day_ms) == reference(day * day_ms));
        CHECK(format_rfc3339_ms(day * day_ms - 1) == reference(day * day_ms - 1));
    }
    std::mt19937_64 random(42);
    std::uniform_int_distribution<int64_t> spread(-62167219200000, 253402300799999);  // years 0 to 9999
    for (int i = 0; i < 20000; ++i) {
        int64_t ms = spread(random);
        CHECK(format_rfc3339_ms(ms) == reference(ms));
    }
    for (int64_t ms : {int64_t{-62167219200001}, int64_t{253402300800000}, int64_t{-99999999999999}}) {
        CHECK(format_rfc3339_ms(ms) == reference(ms));
    }
}

TEST_CASE("timestamps before the epoch are formatted with a positive fraction", "[unit][time]") {
    CHECK(format_rfc3339_ms(-1) == "1969-12-31T23:59:59.999Z");
    CHECK(format_rfc3339_ms(-1000) == "1969-12-31T23:59:59.000Z");
    CHECK(format_rfc3339_ms(-1001) == "1969-12-31T23:59:58.999Z");
}

TEST_CASE("a timestamp for a file name is UTC to the second without separators", "[unit][time]") {
    CHECK(format_compact_utc(0) == "19700101T000000Z");
    CHECK(format_compact_utc(k_t0) == "20261124T203706Z");
    CHECK(format_compact_utc(1709251199999) == "20240229T235959Z");
    CHECK(format_compact_utc(-1) == "19691231T235959Z");
}

TEST_CASE("what format_rfc3339_ms writes parses back to the same milliseconds", "[unit][time]") {
    for (int64_t ms : {int64_t{0}, int64_t{1}, int64_t{999}, int64_t{1000}, k_t0, int64_t{951782400000},
                       int64_t{-1}, int64_t{-1001}, int64_t{253402300799999}}) {
        INFO(ms);
        CHECK(parse_rfc3339_ms(format_rfc3339_ms(ms)) == ms);
    }
    for (int64_t ms = 1700000000000; ms < 1700000000000 + 100000000000; ms += 7777777777) {
        CHECK(parse_rfc3339_ms(format_rfc3339_ms(ms)) == ms);
    }
}

TEST_CASE("any number of fraction digits is accepted, milliseconds are kept", "[unit][time]") {
    CHECK(parse_rfc3339_ms("2026-11-24T20:37:06Z") == k_t0 - 123);
    CHECK(parse_rfc3339_ms("2026-11-24T20:37:06.1Z") == k_t0 - 23);
    CHECK(parse_rfc3339_ms("2026-11-24T20:37:06.12Z") == k_t0 - 3);
    CHECK(parse_rfc3339_ms("2026-11-24T20:37:06.123Z") == k_t0);
    CHECK(parse_rfc3339_ms("2026-11-24T20:37:06.123456Z") == k_t0);
    CHECK(parse_rfc3339_ms("2026-11-24T20:37:06.123999999Z") == k_t0);
    CHECK(parse_rfc3339_ms("2026-11-24T20:37:06.000Z") == k_t0 - 123);
}

TEST_CASE("a lowercase z means UTC too", "[unit][time]") {
    CHECK(parse_rfc3339_ms("2026-11-24T20:37:06.123z") == k_t0);
}

TEST_CASE("offsets east and west of UTC are applied", "[unit][time]") {
    CHECK(parse_rfc3339_ms("2026-11-24T20:37:06.123+00:00") == k_t0);
    CHECK(parse_rfc3339_ms("2026-11-24T20:37:06.123-00:00") == k_t0);
    CHECK(parse_rfc3339_ms("2026-11-24T21:37:06.123+01:00") == k_t0);
    CHECK(parse_rfc3339_ms("2026-11-25T02:07:06.123+05:30") == k_t0);
    CHECK(parse_rfc3339_ms("2026-11-24T15:37:06.123-05:00") == k_t0);
    CHECK(parse_rfc3339_ms("2026-11-24T11:07:06.123-09:30") == k_t0);
    CHECK(parse_rfc3339_ms("2026-11-24T21:37:06+01:00") == k_t0 - 123);
}

TEST_CASE("malformed timestamps are refused", "[unit][time]") {
    for (const char* bad :
         {"", "now", "2026-11-24", "2026-11-24T20:37", "2026-11-24T20:37:06", "2026-11-24T20:37:06.123",
          "2026-11-24T20:37:06.123ZZ", "2026-11-24T20:37:06.123Z ", "2026-11-24T20:37:06+01",
          "2026-11-24T20:37:06+0100", "2026-11-24T20:37:06+01:00x", "2026-11-24T20:37:06 +01:00",
          "2026/11/24T20:37:06Z", "2026-11-24X20:37:06Z"}) {
        INFO('"' << bad << '"');
        CHECK_FALSE(parse_rfc3339_ms(bad));
    }
}

TEST_CASE("timestamps with out-of-range fields are refused", "[unit][time]") {
    for (const char* bad : {"2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-11-32T00:00:00Z",
                            "2026-11-00T00:00:00Z", "2026-11-24T25:00:00Z", "2026-11-24T20:60:00Z",
                            "2026-11-24T20:37:61Z", "2026-11-24T20:37:06+25:00"}) {
        INFO(bad);
        CHECK_FALSE(parse_rfc3339_ms(bad));
    }
}

TEST_CASE("plain durations are seconds", "[unit][time]") {
    CHECK(parse_duration_seconds("0") == 0.0);
    CHECK(parse_duration_seconds("30") == 30.0);
    CHECK(parse_duration_seconds("1.5") == 1.5);
    CHECK(parse_duration_seconds("0.001") == 0.001);
}

TEST_CASE("durations take ms, s, m, h and d units", "[unit][time]") {
    CHECK(parse_duration_seconds("250ms") == Approx(0.25));
    CHECK(parse_duration_seconds("30s") == 30.0);
    CHECK(parse_duration_seconds("1.5s") == 1.5);
    CHECK(parse_duration_seconds("5m") == 300.0);
    CHECK(parse_duration_seconds("0.5m") == 30.0);
    CHECK(parse_duration_seconds("2h") == 7200.0);
    CHECK(parse_duration_seconds("1d") == 86400.0);
}

TEST_CASE("malformed or negative durations give a negative value", "[unit][time]") {
    for (const char* bad : {"", "abc", "s", "ms", "-1", "-0.5s", "5x", "5 s", "5ms ", "5S", "5min", "1h30m",
                            "inf", "nan", "1e999"}) {
        INFO('"' << bad << '"');
        CHECK(parse_duration_seconds(bad) < 0);
    }
}

TEST_CASE("durations are written in the largest unit that divides them, as they are read", "[unit][time]") {
    using mpctl::common::format_duration_seconds;
    CHECK(format_duration_seconds(0.25) == "250ms");
    CHECK(format_duration_seconds(0.5) == "500ms");
    CHECK(format_duration_seconds(0) == "0ms");
    CHECK(format_duration_seconds(1) == "1s");
    CHECK(format_duration_seconds(1.5) == "1.5s");
    CHECK(format_duration_seconds(90) == "90s");
    CHECK(format_duration_seconds(300) == "5m");
    CHECK(format_duration_seconds(7200) == "2h");
    CHECK(format_duration_seconds(86400) == "1d");
    CHECK(format_duration_seconds(61.25) == "61.25s");
    for (double s : {0.25, 1.5, 90.0, 300.0, 7200.0, 61.25}) {
        CHECK(mpctl::common::parse_duration_seconds(format_duration_seconds(s)) == s);
    }
}
