#include <charconv>
#include <cmath>

#include <mpctl/common/byte_size.hpp>

namespace mpctl::common {

std::optional<uint64_t> parse_byte_size(std::string_view text) {
    size_t digits = 0;
    while (digits < text.size() && ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
        ++digits;
    }
    if (digits == 0) {
        return std::nullopt;
    }
    double number = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, number);
    if (ec != std::errc() || ptr != text.data() + digits) {
        return std::nullopt;
    }
    std::string_view unit = text.substr(digits);
    if (unit.ends_with("iB")) {
        unit.remove_suffix(2);
    } else if (unit.size() > 1 && unit.ends_with("B")) {
        unit.remove_suffix(1);
    } else if (unit == "B") {
        unit = {};
    }
    double scale = 1;
    if (unit.size() > 1) {
        return std::nullopt;
    }
    if (unit.size() == 1) {
        switch (unit[0]) {
            case 'k':
            case 'K':
                scale = 1024.0;
                break;
            case 'm':
            case 'M':
                scale = 1024.0 * 1024;
                break;
            case 'g':
            case 'G':
                scale = 1024.0 * 1024 * 1024;
                break;
            case 't':
            case 'T':
                scale = 1024.0 * 1024 * 1024 * 1024;
                break;
            default:
                return std::nullopt;
        }
    }
    double bytes = std::floor(number * scale);
    if (!(bytes >= 0) || bytes >= 9.2e18) {
        return std::nullopt;
    }
    return static_cast<uint64_t>(bytes);
}

}  // namespace mpctl::common
