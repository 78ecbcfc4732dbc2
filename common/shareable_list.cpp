#include <cstring>

#include <mpctl/common/shareable_list.hpp>

namespace mpctl::common::shm {

namespace {

constexpr size_t k_align = 8;

size_t slot_size(const ListValue& v) {
    if (v.kind == ListValue::Kind::string || v.kind == ListValue::Kind::bytes) {
        return k_align * (v.text.size() / k_align + 1);
    }
    return k_align;
}

std::string format_of(const ListValue& v, size_t slot) {
    switch (v.kind) {
        case ListValue::Kind::integer:
            return "q";
        case ListValue::Kind::real:
            return "d";
        case ListValue::Kind::boolean:
            return "xxxxxxx?";
        case ListValue::Kind::none:
            return "xxxxxx?x";
        case ListValue::Kind::string:
        case ListValue::Kind::bytes:
            return std::to_string(slot) + "s";
    }
    return "q";
}

int8_t transform_of(const ListValue& v) {
    switch (v.kind) {
        case ListValue::Kind::string:
            return 1;
        case ListValue::Kind::bytes:
            return 2;
        case ListValue::Kind::none:
            return 3;
        default:
            return 0;
    }
}

void put_i64(char* at, int64_t v) {
    std::memcpy(at, &v, sizeof v);
}

int64_t get_i64(const char* at) {
    int64_t v = 0;
    std::memcpy(&v, at, sizeof v);
    return v;
}

// Writes V into SLOT bytes at AT with format FORMAT (as struct.pack_into: pad bytes are zero).
void pack(char* at, size_t slot, const ListValue& v) {
    std::memset(at, 0,
                v.kind == ListValue::Kind::string || v.kind == ListValue::Kind::bytes ? slot : k_align);
    switch (v.kind) {
        case ListValue::Kind::integer:
            put_i64(at, v.integer);
            break;
        case ListValue::Kind::real:
            std::memcpy(at, &v.real, sizeof v.real);
            break;
        case ListValue::Kind::boolean:
            at[7] = v.boolean ? 1 : 0;
            break;
        case ListValue::Kind::none:
            break;  // "xxxxxx?x" packs None as False: all zero
        case ListValue::Kind::string:
        case ListValue::Kind::bytes:
            std::memcpy(at, v.text.data(), v.text.size());
            break;
    }
}

struct Layout {
    size_t n = 0;
    size_t data_start = 0;  // (n + 2) * 8
    size_t formats = 0;     // where the formats begin
    size_t transforms = 0;  // where the transform codes begin
};

Result<Layout> layout_of(std::string_view image) {
    if (image.size() < 16) {
        return plain_error("not a ShareableList: " + std::to_string(image.size()) + " bytes", Errc::invalid);
    }
    int64_t n = get_i64(image.data());
    if (n < 0 || static_cast<uint64_t>(n) > (image.size() - 16) / 25) {
        return plain_error("not a ShareableList: it would hold " + std::to_string(n) + " items in " +
                               std::to_string(image.size()) + " bytes",
                           Errc::invalid);
    }
    Layout l;
    l.n = static_cast<size_t>(n);
    l.data_start = (l.n + 2) * 8;
    int64_t end = get_i64(image.data() + 8 + l.n * 8);
    if (end < 0 || static_cast<uint64_t>(end) > image.size() - l.data_start - 9 * l.n) {
        return plain_error("not a ShareableList: its data area passes the segment's end", Errc::invalid);
    }
    l.formats = l.data_start + static_cast<size_t>(end);
    l.transforms = l.formats + 8 * l.n;
    return l;
}

Result<size_t> position(const Layout& l, int64_t index) {
    int64_t i = index < 0 ? index + static_cast<int64_t>(l.n) : index;
    if (i < 0 || static_cast<size_t>(i) >= l.n) {
        return plain_error("index " + std::to_string(index) + " out of range (the list has " +
                               std::to_string(l.n) + " items)",
                           Errc::invalid);
    }
    return static_cast<size_t>(i);
}

// Item I's slot: [begin, end) of the data area, from the offsets.
Result<std::pair<size_t, size_t>> slot_of(std::string_view image, const Layout& l, size_t i) {
    int64_t begin = get_i64(image.data() + 8 + i * 8);
    int64_t end = get_i64(image.data() + 16 + i * 8);
    if (begin < 0 || end < begin || static_cast<size_t>(end) > l.formats - l.data_start) {
        return plain_error("not a ShareableList: item " + std::to_string(i) + " has a bad offset",
                           Errc::invalid);
    }
    return std::pair(l.data_start + static_cast<size_t>(begin), l.data_start + static_cast<size_t>(end));
}

std::string format_at(std::string_view image, const Layout& l, size_t i) {
    std::string_view f = image.substr(l.formats + 8 * i, 8);
    return std::string(f.substr(0, f.find('\0')));
}

}  // namespace

std::string encode_list(const std::vector<ListValue>& values) {
    const size_t n = values.size();
    std::vector<size_t> offsets{0};
    for (const auto& v : values) {
        offsets.push_back(offsets.back() + slot_size(v));
    }
    const size_t data_start = (n + 2) * 8;
    std::string image(data_start + offsets.back() + 9 * n, '\0');
    put_i64(image.data(), static_cast<int64_t>(n));
    for (size_t i = 0; i <= n; ++i) {
        put_i64(image.data() + 8 + 8 * i, static_cast<int64_t>(offsets[i]));
    }
    const size_t formats = data_start + offsets.back();
    for (size_t i = 0; i < n; ++i) {
        size_t slot = offsets[i + 1] - offsets[i];
        pack(image.data() + data_start + offsets[i], slot, values[i]);
        std::string f = format_of(values[i], slot);
        std::memcpy(image.data() + formats + 8 * i, f.data(), std::min<size_t>(f.size(), 8));
        image[formats + 8 * n + i] = static_cast<char>(transform_of(values[i]));
    }
    return image;
}

Result<size_t> list_length(std::string_view image) {
    auto l = layout_of(image);
    if (!l) {
        return std::unexpected(l.error());
    }
    return l->n;
}

Result<ListValue> list_get(std::string_view image, int64_t index) {
    auto l = layout_of(image);
    if (!l) {
        return std::unexpected(l.error());
    }
    auto i = position(*l, index);
    if (!i) {
        return std::unexpected(i.error());
    }
    auto slot = slot_of(image, *l, *i);
    if (!slot) {
        return std::unexpected(slot.error());
    }
    const char* at = image.data() + slot->first;
    size_t room = slot->second - slot->first;
    std::string f = format_at(image, *l, *i);
    int8_t code = static_cast<int8_t>(image[l->transforms + *i]);
    auto bad = [&] {
        return plain_error("not a ShareableList item: format '" + f + "' with transform " +
                               std::to_string(code) + " in a slot of " + std::to_string(room) + " bytes",
                           Errc::invalid);
    };
    if (code == 3) {
        return ListValue::none();
    }
    if (f == "q" && code == 0 && room >= 8) {
        return ListValue::of_int(get_i64(at));
    }
    if (f == "d" && code == 0 && room >= 8) {
        double d = 0;
        std::memcpy(&d, at, sizeof d);
        return ListValue::of_real(d);
    }
    if (f == "xxxxxxx?" && code == 0 && room >= 8) {
        return ListValue::of_bool(at[7] != 0);
    }
    if (!f.empty() && f.back() == 's' && (code == 1 || code == 2)) {
        size_t len = 0;
        for (char c : f.substr(0, f.size() - 1)) {
            if (c < '0' || c > '9') {
                return bad();
            }
            len = len * 10 + static_cast<size_t>(c - '0');
        }
        if (len > room) {
            return bad();
        }
        std::string_view raw(at, len);
        raw = raw.substr(0, raw.find_last_not_of('\0') + 1);  // as rstrip(b'\x00')
        if (raw.size() == 1 && raw[0] == '\0') {
            raw = {};
        }
        return code == 1 ? ListValue::of_string(std::string(raw)) : ListValue::of_bytes(std::string(raw));
    }
    return bad();
}

Result<std::vector<ListValue>> list_items(std::string_view image) {
    auto n = list_length(image);
    if (!n) {
        return std::unexpected(n.error());
    }
    std::vector<ListValue> out;
    for (size_t i = 0; i < *n; ++i) {
        auto v = list_get(image, static_cast<int64_t>(i));
        if (!v) {
            return std::unexpected(v.error());
        }
        out.push_back(std::move(*v));
    }
    return out;
}

Result<void> list_set(char* image, size_t size, int64_t index, const ListValue& value) {
    std::string_view view(image, size);
    auto l = layout_of(view);
    if (!l) {
        return std::unexpected(l.error());
    }
    auto i = position(*l, index);
    if (!i) {
        return std::unexpected(i.error());
    }
    auto slot = slot_of(view, *l, *i);
    if (!slot) {
        return std::unexpected(slot.error());
    }
    size_t room = slot->second - slot->first;
    std::string current = format_at(view, *l, *i);
    std::string f;
    if (value.kind == ListValue::Kind::string || value.kind == ListValue::Kind::bytes) {
        if (value.text.size() > room) {
            return plain_error("a " + std::string(value.kind == ListValue::Kind::string ? "str" : "bytes") +
                                   " of " + std::to_string(value.text.size()) + " bytes does not fit item " +
                                   std::to_string(*i) + "'s slot of " + std::to_string(room) + " bytes",
                               Errc::invalid);
        }
        f = !current.empty() && current.back() == 's' ? current : std::to_string(room) + "s";
    } else {
        if (room < k_align) {
            return plain_error("item " + std::to_string(*i) + "'s slot is too small", Errc::invalid);
        }
        f = format_of(value, room);
    }
    char formatted[8] = {};
    std::memcpy(formatted, f.data(), std::min<size_t>(f.size(), 8));
    std::memcpy(image + l->formats + 8 * *i, formatted, 8);
    image[l->transforms + *i] = static_cast<char>(transform_of(value));
    // struct.pack_into of "%ds" writes the format's length: a kept "16s" in a slot of 16 pads to 16.
    size_t pad = room;
    if (f.back() == 's') {
        pad = std::min(room, static_cast<size_t>(std::stoul(f.substr(0, f.size() - 1))));
    }
    pack(image + slot->first, pad, value);
    return {};
}

}  // namespace mpctl::common::shm
