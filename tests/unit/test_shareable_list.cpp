// common/shareable_list: CPython's ShareableList layout, byte for byte (the fixture below is what CPython
// 3.11's ShareableList([7, "ab", None]) makes), and reading and setting items as Python does.

#include <catch2/catch.hpp>

#include <mpctl/common/shareable_list.hpp>

using mpctl::common::shm::ListValue;
namespace shm = mpctl::common::shm;

namespace {

std::string le64(int64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) {
        s[static_cast<size_t>(i)] = static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
    }
    return s;
}

std::string padded(std::string s, size_t n) {
    s.resize(n, '\0');
    return s;
}

}  // namespace

TEST_CASE("shareable list: the image of [7, 'ab', None] is CPython's", "[unit][shm]") {
    // 8: N; 4 * 8: offsets 0, 8, 16, 24; data: 7, "ab" in 8 bytes, None as 8 zero bytes; formats; codes.
    std::string expected = le64(3) + le64(0) + le64(8) + le64(16) + le64(24) + le64(7) + padded("ab", 8) +
                           std::string(8, '\0') + padded("q", 8) + padded("8s", 8) + "xxxxxx?x" +
                           std::string("\0\1\3", 3);
    std::string image =
        shm::encode_list({ListValue::of_int(7), ListValue::of_string("ab"), ListValue::none()});
    CHECK(image == expected);
    CHECK(shm::encode_list({}) == le64(0) + le64(0));  // the empty list: 16 bytes
}

TEST_CASE("shareable list: items read back as they went in, by index from either end", "[unit][shm]") {
    std::vector<ListValue> values{ListValue::of_int(INT64_MIN),
                                  ListValue::of_int(INT64_MAX),
                                  ListValue::of_real(-1.5),
                                  ListValue::of_bool(true),
                                  ListValue::of_bool(false),
                                  ListValue::none(),
                                  ListValue::of_string(""),
                                  ListValue::of_string("h\xc3\xa9llo"),
                                  ListValue::of_bytes(std::string("\0z", 2)),
                                  ListValue::of_string(std::string(8, 'x'))};
    std::string image = shm::encode_list(values);
    auto items = shm::list_items(image);
    REQUIRE(items.has_value());
    CHECK(*items == values);
    CHECK(shm::list_get(image, -1).value() == values.back());
    CHECK_FALSE(shm::list_get(image, 10).has_value());
    CHECK_FALSE(shm::list_get(image, -11).has_value());
    // A slot of 8 * (n / 8 + 1) bytes: 8 characters take 16.
    CHECK(image.size() == 8 + 8 * 11 + (8 * 9 + 16) + 9 * 10);
}

TEST_CASE("shareable list: setting an item as __setitem__ does, a str too long for its slot changes nothing",
          "[unit][shm]") {
    std::string image = shm::encode_list({ListValue::of_string("abc"), ListValue::of_int(1)});
    REQUIRE(shm::list_set(image.data(), image.size(), 0, ListValue::of_int(99)).has_value());
    CHECK(shm::list_get(image, 0).value() == ListValue::of_int(99));
    // The slot still has its 8 bytes: a str fits again, with the slot's own size as its format.
    REQUIRE(shm::list_set(image.data(), image.size(), 0, ListValue::of_string("12345678")).has_value());
    CHECK(shm::list_get(image, 0).value() == ListValue::of_string("12345678"));
    std::string before = image;
    auto too_long = shm::list_set(image.data(), image.size(), 1, ListValue::of_string("123456789"));
    REQUIRE_FALSE(too_long.has_value());
    CHECK(image == before);
    REQUIRE(shm::list_set(image.data(), image.size(), -1, ListValue::none()).has_value());
    CHECK(shm::list_get(image, 1).value() == ListValue::none());
}

TEST_CASE("shareable list: bytes that are no list are refused, never read past", "[unit][shm]") {
    CHECK_FALSE(shm::list_length(std::string(8, '\0')).has_value());
    CHECK_FALSE(shm::list_length(le64(1000) + le64(0)).has_value());  // 1000 items in 16 bytes
    std::string image = shm::encode_list({ListValue::of_int(1)});
    std::string bad_offsets = image;
    bad_offsets.replace(16, 8, le64(1 << 20));  // the data area's end far past the segment
    CHECK_FALSE(shm::list_get(bad_offsets, 0).has_value());
    CHECK_FALSE(shm::list_length(std::string(4096, '\xff')).has_value());
}
