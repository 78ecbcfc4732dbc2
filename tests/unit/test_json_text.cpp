#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/proto/bounded_json.hpp>
#include <mpctl/proto/json_text.hpp>

using nlohmann::json;

namespace {

std::string ours(std::string_view s) {
    std::string out;
    mpctl::proto::append_json_string(out, s);
    return out;
}

// What nlohmann writes for S with the settings mpctl had before bytes were carried: compact, UTF-8 kept,
// invalid bytes replaced. For valid UTF-8 ours is the same.
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

// What Python writes for S: json.dumps(S.decode("utf-8", "surrogateescape")) escapes each byte that is not
// part of valid UTF-8 as \udcXY; kept valid UTF-8 as ours does (ensure_ascii=False for those).
void check_escaped(const std::string& s, const std::string& want) {
    INFO("input bytes: " << hex(s));
    CHECK(ours(s) == want);
    // And back: the exact bytes, whichever parser reads it.
    CHECK(mpctl::proto::parse_json_text(ours(s)) == json(s));
    auto bounded = mpctl::proto::parse_bounded_json("[" + ours(s) + "]");
    REQUIRE(bounded.outcome == mpctl::proto::BoundedJson::Outcome::ok);
    CHECK(bounded.value[0].get<std::string>() == s);
}

TEST_CASE("each byte that is not part of valid UTF-8 is written as a lone surrogate escape, U+DC80 to U+DCFF",
          "[unit][json_text]") {
    check_escaped("\x80", R"("\udc80")");
    check_escaped("\xFF", R"("\udcff")");
    check_escaped("a\x80z", R"("a\udc80z")");
    check_escaped("\xFF\xFE", R"("\udcff\udcfe")");
    check_escaped("ok\xFF", R"("ok\udcff")");
    // Overlong forms, encoded surrogates and code points past U+10FFFF: each byte on its own, as Python's
    // surrogateescape has them.
    check_escaped("\xC0\xAF", R"("\udcc0\udcaf")");
    check_escaped("\xED\xA0\x80", R"("\udced\udca0\udc80")");
    check_escaped("\xF4\x90\x80\x80", R"("\udcf4\udc90\udc80\udc80")");
    // Cut short, at the end or by another byte: the bytes before the break are escaped, what follows is read
    // afresh.
    check_escaped("\xE2\x82", R"("\udce2\udc82")");
    check_escaped(
        "\xE2\x82"
        "A",
        R"("\udce2\udc82A")");
    check_escaped("\xE2\x82\xC3\xA9", "\"\\udce2\\udc82\xC3\xA9\"");
    check_escaped("\xF0\x9F\x98\xF0\x9F\x98\x80", "\"\\udcf0\\udc9f\\udc98\xF0\x9F\x98\x80\"");
    check_escaped("\xE2\x0A", R"("\udce2\n")");
}

TEST_CASE("every byte 0x01 to 0xff alone and in a word comes back exactly", "[unit][json_text]") {
    for (int c = 1; c < 256; ++c) {
        std::string s(1, static_cast<char>(c));
        for (const auto& word : {s, "x" + s + "y", s + s}) {
            INFO(hex(word));
            CHECK(mpctl::proto::parse_json_text(ours(word)) == json(word));
            CHECK(mpctl::proto::parse_json_text(mpctl::proto::dump_json(json{{word, {word}}})) ==
                  json{{word, {word}}});
        }
    }
}

TEST_CASE("a lone surrogate escape that is not a byte, or the second half of a pair, is read as before",
          "[unit][json_text]") {
    using mpctl::proto::parse_json_text;
    // A pair is a character: U+1F4FF, whose second half is in the byte range.
    CHECK(parse_json_text(R"("\ud83d\udcff")") == json("\xF0\x9F\x93\xBF"));
    CHECK(parse_json_text(R"("\uD83D\uDCFF")") == json("\xF0\x9F\x93\xBF"));
    // Upper-case hex is the same byte.
    CHECK(parse_json_text(R"("\uDCFF")") == json("\xFF"));
    // Below \udc80 (not a byte of Python's surrogateescape) and a high surrogate alone stay errors.
    CHECK(parse_json_text(R"("\udc7f")").is_discarded());
    CHECK(parse_json_text(R"("\ud800")").is_discarded());
    CHECK(parse_json_text(R"("\ud800x")").is_discarded());
    // An escaped backslash before "udcff" is a backslash and letters.
    CHECK(parse_json_text(R"("\\udcff")") == json("\\udcff"));
    CHECK(parse_json_text(R"("\\\udcff")") == json("\\\xFF"));
}

TEST_CASE("U+FDD0, the mark bytes are carried by while parsing, comes through as itself",
          "[unit][json_text]") {
    using mpctl::proto::parse_json_text;
    const std::string mark = "\xEF\xB7\x90";
    CHECK(parse_json_text("\"" + mark + "\"") == json(mark));
    CHECK(parse_json_text(R"("\ufdd0")") == json(mark));
    CHECK(parse_json_text("\"" + mark + R"(ff\udcff")") == json(mark + "ff\xFF"));
    CHECK(parse_json_text("{\"" + mark + "41\":\"\\udc80\"}") == json{{mark + "41", "\x80"}});
    CHECK(ours(mark) == "\"" + mark + "\"");
}

TEST_CASE("random byte strings come back exactly, and valid UTF-8 is written as nlohmann writes it",
          "[unit][json_text]") {
    std::mt19937 rng(20261124);
    std::uniform_int_distribution<int> length(0, 40);
    std::uniform_int_distribution<int> any_byte(0, 255);
    // Bytes weighted towards the interesting ranges: ASCII, escapes, continuation bytes and lead bytes.
    const std::vector<unsigned char> interesting = {0x00, 0x0a, 0x1f, 0x22, 0x41, 0x5c, 0x7f, 0x80,
                                                    0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf,
                                                    0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
    std::uniform_int_distribution<size_t> pick(0, interesting.size() - 1);
    int lost = 0;
    int differ = 0;
    std::string first_lost;
    for (int round = 0; round < 5000; ++round) {
        std::string s(static_cast<size_t>(length(rng)), '\0');
        for (auto& c : s) {
            c = static_cast<char>(round % 2 == 0 ? any_byte(rng) : interesting[pick(rng)]);
        }
        if (mpctl::proto::parse_json_text(ours(s)) != json(s)) {
            if (lost++ == 0) {
                first_lost = s;
            }
        }
        // Where nlohmann has nothing to replace, it writes what we write.
        std::string replaced = reference(s);
        if (replaced.find("\xEF\xBF\xBD") == std::string::npos && ours(s) != replaced) {
            ++differ;
        }
    }
    INFO(lost << " of 5000 random strings did not come back; the first: " << hex(first_lost));
    CHECK(lost == 0);
    CHECK(differ == 0);
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

TEST_CASE("the output always parses back as JSON, to the same bytes", "[unit][json_text]") {
    std::mt19937 rng(99);
    std::uniform_int_distribution<int> any_byte(0, 255);
    for (int round = 0; round < 1000; ++round) {
        std::string s(32, '\0');
        for (auto& c : s) {
            c = static_cast<char>(any_byte(rng));
        }
        std::string text = ours(s);
        CHECK(mpctl::proto::parse_json_text(text) == json(s));
    }
}
