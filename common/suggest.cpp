#include <algorithm>

#include <mpctl/common/suggest.hpp>

namespace mpctl::common {

size_t edit_distance(std::string_view a, std::string_view b) {
    // Optimal string alignment: three rows of the table are enough.
    std::vector<size_t> before(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                cur[j] = std::min(cur[j], before[j - 2] + 1);
            }
        }
        before.swap(prev);
        prev.swap(cur);
    }
    return prev[b.size()];
}

std::optional<std::string> nearest_word(std::string_view word, const std::vector<std::string>& known) {
    if (word.empty()) {
        return std::nullopt;
    }
    // A word that begins exactly one command was cut short (`stat`: status, not start).
    std::vector<std::string> extended;
    for (const auto& k : known) {
        if (k.size() > word.size() && k.compare(0, word.size(), word) == 0) {
            extended.push_back(k);
        }
    }
    if (extended.size() == 1) {
        return extended.front();
    }
    size_t limit = word.size() <= 3 ? 1 : 2;
    size_t best = limit + 1;
    std::vector<std::string> nearest;
    for (const auto& k : known) {
        size_t d = edit_distance(word, k);
        if (d < best) {
            best = d;
            nearest = {k};
        } else if (d == best) {
            nearest.push_back(k);
        }
    }
    // A tie: guessing would mislead.
    return nearest.size() == 1 ? std::optional<std::string>(nearest.front()) : std::nullopt;
}

}  // namespace mpctl::common
