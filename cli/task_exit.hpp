#pragma once
// The exit code of commands that mirror several tasks (wait, as-completed, map), as README.md's "Exit codes"
// says: 0 if every task succeeded, else the code of the first unsuccessful task in argument (or input) order.
// Tasks may be added in any order (as they finish); only the earliest unsuccessful one is remembered.

#include <cstdint>
#include <optional>

#include <mpctl/proto/task_status.hpp>

namespace mpctl::cli {

class FirstUnsuccessful {
  public:
    // The finished task at POSITION (its place in argument or input order).
    void add(uint64_t position, const proto::TaskStatus& status) {
        add_code(position, proto::mirror_exit_code(status));
    }
    // The same with its mirrored exit code already computed.
    void add_code(uint64_t position, int code) {
        if (code != 0 && (!position_ || position < *position_)) {
            position_ = position;
            code_ = code;
        }
    }
    [[nodiscard]] int code() const { return code_; }

  private:
    std::optional<uint64_t> position_;
    int code_ = 0;
};

}  // namespace mpctl::cli
