#pragma once
// --halt of `mpctl map`, as GNU parallel spells it: "now,fail=N" (after N failed tasks, cancel the rest and
// stop the running ones), "soon,fail=N" (after N, start no more but let the running ones finish), "never".

#include <optional>
#include <string_view>

namespace mpctl::cli::map {

struct HaltPolicy {
    enum class When { never, now, soon };
    When when = When::never;
    int fail = 0;  // failures that trigger it (>= 1 unless never)

    // True once FAILURES failed tasks are enough to halt.
    [[nodiscard]] bool triggered(int failures) const { return when != When::never && failures >= fail; }
};

// nullopt if TEXT is not one of the forms above.
[[nodiscard]] std::optional<HaltPolicy> parse_halt(std::string_view text);

}  // namespace mpctl::cli::map
