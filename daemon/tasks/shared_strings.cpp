#include <algorithm>

#include <mpctl/daemon/tasks/shared_strings.hpp>

namespace mpctl::daemon {

SharedStrings::Ref SharedStrings::get(std::string_view text) {
    auto it = by_text_.find(text);
    if (it != by_text_.end()) {
        if (Ref held = it->second.lock()) {
            return held;
        }
    }
    // Strings nobody holds pile up when every one is new (a map's pool per run); sweep now and then, after
    // as many new ones as the last sweep left, so that the sweeps cost O(1) per string made.
    if (++made_since_sweep_ > std::max<size_t>(1024, kept_at_sweep_)) {
        sweep();
        it = by_text_.end();
    }
    auto made = std::make_shared<const std::string>(text);
    if (it != by_text_.end()) {
        it->second = made;
    } else {
        by_text_.insert_or_assign(std::string(text), made);
    }
    return made;
}

void SharedStrings::sweep() {
    made_since_sweep_ = 0;
    std::erase_if(by_text_, [](const auto& item) { return item.second.expired(); });
    kept_at_sweep_ = by_text_.size();
}

}  // namespace mpctl::daemon
