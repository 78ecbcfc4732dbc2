#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/proto/json_text.hpp>

using nlohmann::json;

namespace {

std::string ours(std::string_view s) {
    std::string out;
    mpctl::proto::append_json_string(out, s);
    return out;
}

// What nlohmann writes for S with the daemon's settings: compact, UTF-8 kept, invalid bytes replaced.
std::string reference(const std::string& s) {
    return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string hex(std::string_view s) {
    static constexpr char k_hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        out += k_hex[c >> 4];
        out += k_hex[c & 15];
        out += ' ';
    }
    return out;
}

void check_same(const std::string& s) {
    INFO("input bytes: " << hex(s));
    std::string got = ours(s);
    std::string want = reference(s);
    INFO("ours:     " << hex(got));
    INFO("nlohmann: " << hex(want));
    CHECK(got == want);
}

}  // namespace

TEST_CASE("append_json_string appends a quoted literal after what is already there", "[unit][json_text]") {
    std::string out = "prefix:";
    mpctl::proto::append_json_string(out, "abc");
    mpctl::proto::append_json_string(out, "");
    CHECK(out == "prefix:\"abc\"\"\"");
}

TEST_CASE("plain ASCII is written as nlohmann writes it", "[unit][json_text]") {
    for (const char* s :
         {"", "a", "hello world", "PATH=/usr/bin:/bin", "{}[]:,", "~`!@#$%^&*()_+-=", "\x7f"}) {
        check_same(s);
    }
    std::string all_printable;
    for (int c = 0x20; c < 0x7f; ++c) {
        all_printable.push_back(static_cast<char>(c));
    }
    check_same(all_printable);
}

TEST_CASE("quotes and backslashes are escaped as nlohmann escapes them", "[unit][json_text]") {
    for (const char* s : {"\"", "\\", "a\"b\\c", "\\\\\"\"", "C:\\path\\to"}) {
        check_same(s);
    }
    CHECK(ours("a\"b\\c") == R"("a\"b\\c")");
}

TEST_CASE("every control character is escaped as nlohmann escapes it", "[unit][json_text]") {
    for (int c = 0; c < 0x20; ++c) {
        check_same(std::string(1, static_cast<char>(c)));
        check_same("x" + std::string(1, static_cast<char>(c)) + "y");
    }
    CHECK(ours("\n\t\r\b\f") == R"("\n\t\r\b\f")");
    CHECK(ours(std::string("\0\x01\x1f", 3)) == R"("\u0000\u0001\u001f")");
}

TEST_CASE("valid multi-byte UTF-8 is kept as it is", "[unit][json_text]") {
    for (const char* s :
         {"\xC2\x80", "\xC3\xA9t\xC3\xA9", "\xDF\xBF", "\xE0\xA0\x80", "\xE2\x82\xAC 5", "\xED\x9F\xBF",
          "\xEE\x80\x80", "\xEF\xBF\xBD", "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF0\x9F\x98\x80 smile",
          "\xF4\x8F\xBF\xBF", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"}) {
        check_same(s);
        CHECK(ours(s) == "\"" + std::string(s) + "\"");
    }
}

TEST_CASE("lone continuation bytes and invalid lead bytes are replaced as nlohmann replaces them",
          "[unit][json_text]") {
    for (const char* s : {"\x80", "\xBF", "a\x80z", "\x80\x80\x80", "\xC0", "\xC1", "\xF5", "\xF8", "\xFE",
                          "\xFF", "\xFF\xFE", "ok\xFF"}) {
        check_same(s);
    }
}

TEST_CASE("overlong encodings are replaced as nlohmann replaces them", "[unit][json_text]") {
    for (const char* s : {"\xC0\x80", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\x80", "\xE0\x9F\xBF",
                          "\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF"}) {
        check_same(s);
    }
}

TEST_CASE("UTF-8 encoded surrogates and code points past U+10FFFF are replaced as nlohmann replaces them",
          "[unit][json_text]") {
    for (const char* s : {"\xED\xA0\x80", "\xED\xBF\xBF", "\xED\xA0\xBD\xED\xB8\x80", "\xF4\x90\x80\x80",
                          "\xF7\xBF\xBF\xBF"}) {
        check_same(s);
    }
}

TEST_CASE("a multi-byte sequence cut short at the end of the string is replaced as nlohmann replaces it",
          "[unit][json_text]") {
    for (const char* s : {"\xC3", "\xE2\x82", "\xE2", "\xF0\x9F\x98", "\xF0\x9F", "abc\xF0\x9F\x98"}) {
        check_same(s);
    }
}

TEST_CASE("a multi-byte sequence interrupted by another byte is replaced as nlohmann replaces it",
          "[unit][json_text]") {
    for (const char* s :
         {"\xE2\x82"
          "A",
          "\xC3"
          "A",
          "\xF0\x9F\x98"
          "A",
          "\xE2\x82\xC3\xA9", "\xF0\x9F\x22", "\xE2\x82\x5C", "\xE2\x0A", "\xF0\x9F\x98\xF0\x9F\x98\x80"}) {
        check_same(s);
    }
}

TEST_CASE("random byte strings are written exactly as nlohmann writes them", "[unit][json_text]") {
    std::mt19937 rng(20261124);
    std::uniform_int_distribution<int> length(0, 40);
    std::uniform_int_distribution<int> any_byte(0, 255);
    // Bytes weighted towards the interesting ranges: ASCII, escapes, continuation bytes and lead bytes.
    const std::vector<unsigned char> interesting = {0x00, 0x0a, 0x1f, 0x22, 0x41, 0x5c, 0x7f, 0x80,
                                                    0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf,
                                                    0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
    std::uniform_int_distribution<size_t> pick(0, interesting.size() - 1);
    int mismatches = 0;
    std::string first_mismatch;
    for (int round = 0; round < 5000; ++round) {
        std::string s(static_cast<size_t>(length(rng)), '\0');
        for (auto& c : s) {
            c = static_cast<char>(round % 2 == 0 ? any_byte(rng) : interesting[pick(rng)]);
        }
        if (ours(s) != reference(s)) {
            if (mismatches++ == 0) {
                first_mismatch = s;
            }
        }
    }
    INFO(mismatches << " of 5000 random strings differ");
    if (mismatches > 0) {
        check_same(first_mismatch);
    }
    CHECK(mismatches == 0);
}

TEST_CASE("random valid UTF-8 strings are kept byte for byte", "[unit][json_text]") {
    std::mt19937 rng(7);
    std::uniform_int_distribution<uint32_t> cp_dist(0x20, 0x10FFFF);
    for (int round = 0; round < 1000; ++round) {
        std::string s;
        for (int k = 0; k < 10; ++k) {
            uint32_t cp = cp_dist(rng);
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xE000;
            }
            if (cp == '"' || cp == '\\' || cp == 0x7f) {
                cp = 'x';
            }
            if (cp < 0x80) {
                s.push_back(static_cast<char>(cp));
            } else if (cp < 0x800) {
                s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
                s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
            } else if (cp < 0x10000) {
                s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
                s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
                s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
            } else {
                s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
                s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
                s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
                s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
            }
        }
        INFO(hex(s));
        CHECK(ours(s) == "\"" + s + "\"");
        CHECK(ours(s) == reference(s));
    }
}

TEST_CASE("the output always parses back as JSON", "[unit][json_text]") {
    std::mt19937 rng(99);
    std::uniform_int_distribution<int> any_byte(0, 255);
    for (int round = 0; round < 1000; ++round) {
        std::string s(32, '\0');
        for (auto& c : s) {
            c = static_cast<char>(any_byte(rng));
        }
        std::string text = ours(s);
        CHECK(json::accept(text));
    }
}
