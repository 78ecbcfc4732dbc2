#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include <mpctl/common/time.hpp>

namespace mpctl::common {

int64_t now_unix_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {

// UNIX_MS as a UTC calendar time, its milliseconds (0..999, also before 1970) in MS.
struct tm utc(int64_t unix_ms, int& ms) {
    time_t secs = static_cast<time_t>(unix_ms / 1000);
    ms = static_cast<int>(unix_ms % 1000);
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    struct tm tm {};
    ::gmtime_r(&secs, &tm);
    return tm;
}

}  // namespace

namespace {

// The proleptic Gregorian date of DAYS since 1970-01-01 (Howard Hinnant's civil_from_days).
void civil_from_days(int64_t days, int64_t& year, unsigned& month, unsigned& day) {
    days += 719468;
    const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const auto doe = static_cast<unsigned>(days - era * 146097);                 // [0, 146096]
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
    const unsigned mp = (5 * doy + 2) / 153;                                     // [0, 11], from March
    day = doy - (153 * mp + 2) / 5 + 1;
    month = mp < 10 ? mp + 3 : mp - 9;
    year = static_cast<int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
}

void put_digits(char* at, unsigned value, int width) {
    for (int i = width - 1; i >= 0; --i) {
        at[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
}

}  // namespace

std::string format_rfc3339_ms(int64_t unix_ms) {
    // By hand: every task status has three of these, and gmtime_r with snprintf cost ~1 us each.
    int64_t secs = unix_ms / 1000;
    int64_t ms = unix_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    int64_t days = secs / 86400;
    int64_t in_day = secs % 86400;
    if (in_day < 0) {
        in_day += 86400;
        days -= 1;
    }
    int64_t year = 0;
    unsigned month = 0, day = 0;
    civil_from_days(days, year, month, day);
    if (year < 0 || year > 9999) {  // not four digits: as printf writes it
        int tm_ms = 0;
        struct tm tm = utc(unix_ms, tm_ms);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm_ms);
        return buf;
    }
    std::string out = "0000-00-00T00:00:00.000Z";
    put_digits(&out[0], static_cast<unsigned>(year), 4);
    put_digits(&out[5], month, 2);
    put_digits(&out[8], day, 2);
    put_digits(&out[11], static_cast<unsigned>(in_day / 3600), 2);
    put_digits(&out[14], static_cast<unsigned>(in_day / 60 % 60), 2);
    put_digits(&out[17], static_cast<unsigned>(in_day % 60), 2);
    put_digits(&out[20], static_cast<unsigned>(ms), 3);
    return out;
}

std::string format_compact_utc(int64_t unix_ms) {
    int ms = 0;
    struct tm tm = utc(unix_ms, ms);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

std::optional<int64_t> parse_rfc3339_ms(const std::string& text) {
    int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0, used = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &mon, &day, &hour, &min, &sec, &used) !=
        6) {
        return std::nullopt;
    }
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
        return std::nullopt;
    }
    size_t pos = static_cast<size_t>(used);
    int64_t ms = 0;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        int digits = 0;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
            if (digits < 3) {
                ms = ms * 10 + (text[pos] - '0');
            }
            ++digits;
            ++pos;
        }
        for (; digits < 3; ++digits) {
            ms *= 10;
        }
    }
    int64_t offset_s = 0;
    if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
        ++pos;
    } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
        int oh = 0, om = 0;
        if (std::sscanf(text.c_str() + pos + 1, "%2d:%2d", &oh, &om) != 2 || oh > 23 || om > 59) {
            return std::nullopt;
        }
        offset_s = (oh * 3600 + om * 60) * (text[pos] == '+' ? 1 : -1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != text.size()) {
        return std::nullopt;
    }
    struct tm tm {};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t secs = ::timegm(&tm);
    // timegm normalises what does not exist (February 30th); such a date is refused instead.
    struct tm check {};
    ::gmtime_r(&secs, &check);
    if (check.tm_mday != day || check.tm_mon != mon - 1) {
        return std::nullopt;
    }
    return (static_cast<int64_t>(secs) - offset_s) * 1000 + ms;
}

double parse_duration_seconds(const std::string& text) {
    if (text.empty()) {
        return -1;
    }
    size_t used = 0;
    double value = 0;
    try {
        value = std::stod(text, &used);
    } catch (...) {
        return -1;
    }
    if (!std::isfinite(value) || value < 0) {
        return -1;
    }
    std::string unit = text.substr(used);
    if (unit.empty() || unit == "s") {
        return value;
    }
    if (unit == "ms") {
        return value / 1000.0;
    }
    if (unit == "m") {
        return value * 60;
    }
    if (unit == "h") {
        return value * 3600;
    }
    if (unit == "d") {
        return value * 86400;
    }
    return -1;
}

std::string format_duration_seconds(double seconds) {
    auto ms = static_cast<int64_t>(std::llround(seconds * 1000.0));
    struct Unit {
        int64_t ms;
        const char* name;
    };
    for (Unit u : {Unit{86'400'000, "d"}, Unit{3'600'000, "h"}, Unit{60'000, "m"}, Unit{1'000, "s"}}) {
        if (ms >= u.ms && ms % u.ms == 0) {
            return std::to_string(ms / u.ms) + u.name;
        }
    }
    if (ms < 1000) {
        return std::to_string(ms) + "ms";
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.3f", static_cast<double>(ms) / 1000.0);
    std::string out = text;
    out.erase(out.find_last_not_of('0') + 1);
    return out + "s";
}

}  // namespace mpctl::common
