#pragma once
// SharedStrings: one copy of each string that many tasks repeat (their working directory, their pool),
// held by all of them. A map submits the same cwd and pool a million times; a std::string of a path longer
// than 15 characters is a heap block of its own per task. Entries whose last holder is gone are swept now
// and then. Loop thread only.

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mpctl::daemon {

class SharedStrings {
  public:
    using Ref = std::shared_ptr<const std::string>;

    // The shared copy of TEXT, made if there is none.
    [[nodiscard]] Ref get(std::string_view text);

    // Forgets the strings nobody holds any more.
    void sweep();

    [[nodiscard]] size_t size() const { return by_text_.size(); }

  private:
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, std::weak_ptr<const std::string>, Hash, std::equal_to<>> by_text_;
    size_t made_since_sweep_ = 0;
    size_t kept_at_sweep_ = 0;
};

}  // namespace mpctl::daemon
