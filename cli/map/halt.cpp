#include <mpctl/cli/map/halt.hpp>

namespace mpctl::cli::map {

std::optional<HaltPolicy> parse_halt(std::string_view text) {
    HaltPolicy p;
    if (text == "never") {
        return p;
    }
    auto comma = text.find(',');
    if (comma == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view when = text.substr(0, comma);
    std::string_view cond = text.substr(comma + 1);
    if (when == "now") {
        p.when = HaltPolicy::When::now;
    } else if (when == "soon") {
        p.when = HaltPolicy::When::soon;
    } else {
        return std::nullopt;
    }
    if (!cond.starts_with("fail=")) {
        return std::nullopt;
    }
    std::string_view n = cond.substr(5);
    if (n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    p.fail = 0;
    for (char c : n) {
        p.fail = p.fail * 10 + (c - '0');
    }
    if (p.fail < 1) {
        return std::nullopt;
    }
    return p;
}

}  // namespace mpctl::cli::map
