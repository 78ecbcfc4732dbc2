#pragma once
// CPython's ShareableList (Lib/multiprocessing/shared_memory.py, 3.9 and later) in a segment's bytes, so
// that lists Python makes are read here and lists made here are read and changed by Python. The layout,
// all little-endian on the machines this runs on, as struct's native formats:
//   8 bytes           N, the number of items (int64)
//   (N + 1) * 8       each item's offset into the data area, and the data area's end (int64)
//   data area         each item's slot: int "q" and float "d" 8 bytes; bool "xxxxxxx?" 7 zero bytes and
//                     the bool; None "xxxxxx?x" 8 zero bytes; str and bytes "%ds", a slot of 8 * (n / 8 + 1)
//                     bytes (n the length), NUL-padded
//   N * 8             each item's struct format as text, NUL-padded to 8 bytes ("q", "d", "16s", ...)
//   N                 each item's back transform: 0 int, float or bool; 1 str; 2 bytes; 3 None
// One difference, on purpose: CPython sizes a str slot by its number of characters, too small for a
// non-ASCII string's UTF-8; here it is sized by UTF-8 bytes (CPython reads it all the same). For ASCII data
// the image is CPython's, byte for byte. As in CPython, str and bytes lose trailing NUL bytes when read.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <mpctl/common/result.hpp>

namespace mpctl::common::shm {

struct ListValue {
    enum class Kind { integer, real, boolean, none, string, bytes };
    Kind kind = Kind::none;
    int64_t integer = 0;
    double real = 0;
    bool boolean = false;
    std::string text;  // string (UTF-8) or bytes

    static ListValue of_int(int64_t v) { return {Kind::integer, v, 0, false, {}}; }
    static ListValue of_real(double v) { return {Kind::real, 0, v, false, {}}; }
    static ListValue of_bool(bool v) { return {Kind::boolean, 0, 0, v, {}}; }
    static ListValue none() { return {}; }
    static ListValue of_string(std::string v) { return {Kind::string, 0, 0, false, std::move(v)}; }
    static ListValue of_bytes(std::string v) { return {Kind::bytes, 0, 0, false, std::move(v)}; }
    bool operator==(const ListValue&) const = default;
};

// The bytes of a ShareableList holding VALUES (its segment's size is the image's).
[[nodiscard]] std::string encode_list(const std::vector<ListValue>& values);

// The number of items of the list in IMAGE (a segment's bytes), checked to be a well-formed list.
[[nodiscard]] Result<size_t> list_length(std::string_view image);
// Item INDEX (from 0; negative from the end, as Python) of the list in IMAGE.
[[nodiscard]] Result<ListValue> list_get(std::string_view image, int64_t index);
// Every item.
[[nodiscard]] Result<std::vector<ListValue>> list_items(std::string_view image);
// Sets item INDEX of the list in IMAGE (SIZE bytes, writable) to VALUE, as ShareableList.__setitem__ does:
// a str or bytes must fit the item's slot (Errc::invalid otherwise, and nothing changes); any other value
// fits any slot.
[[nodiscard]] Result<void> list_set(char* image, size_t size, int64_t index, const ListValue& value);

}  // namespace mpctl::common::shm
