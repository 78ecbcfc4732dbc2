#include <array>
#include <cstdint>

#include <mpctl/common/base64.hpp>

namespace mpctl::common {

namespace {

constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> make_decode_table() {
    std::array<int8_t, 256> table{};
    for (auto& v : table) {
        v = -1;
    }
    for (int i = 0; i < 64; ++i) {
        table[static_cast<unsigned char>(k_alphabet[i])] = static_cast<int8_t>(i);
    }
    return table;
}

constexpr auto k_decode = make_decode_table();

}  // namespace

std::string base64_encode(std::string_view data) {
    std::string out;
    out.resize((data.size() + 2) / 3 * 4);
    const auto* in = reinterpret_cast<const unsigned char*>(data.data());
    size_t n = data.size();
    size_t o = 0;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
        out[o++] = k_alphabet[(v >> 18) & 63];
        out[o++] = k_alphabet[(v >> 12) & 63];
        out[o++] = k_alphabet[(v >> 6) & 63];
        out[o++] = k_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = uint32_t{in[i]} << 16;
        if (i + 1 < n) {
            v |= uint32_t{in[i + 1]} << 8;
        }
        out[o++] = k_alphabet[(v >> 18) & 63];
        out[o++] = k_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? k_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        int pad = 0;
        uint32_t v = 0;
        for (size_t j = 0; j < 4; ++j) {
            char c = text[i + j];
            if (c == '=') {
                // Padding only in the last quantum's last two places.
                if (i + 4 != text.size() || j < 2) {
                    return std::nullopt;
                }
                ++pad;
                v <<= 6;
                continue;
            }
            if (pad > 0) {
                return std::nullopt;
            }
            int8_t d = k_decode[static_cast<unsigned char>(c)];
            if (d < 0) {
                return std::nullopt;
            }
            v = (v << 6) | static_cast<uint32_t>(d);
        }
        out.push_back(static_cast<char>((v >> 16) & 0xff));
        if (pad < 2) {
            out.push_back(static_cast<char>((v >> 8) & 0xff));
        }
        if (pad < 1) {
            out.push_back(static_cast<char>(v & 0xff));
        }
    }
    return out;
}

}  // namespace mpctl::common
