#pragma once
// Result<T>: the syscall layer's return type. It never throws; the error carries errno and what was being
// done.

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>

namespace mpctl::common {

struct Error {
    std::string context;  // what was being attempted, e.g. "open /var/lib/mpctl/db"
    int err = 0;          // errno, or 0 when the failure is not a syscall's

    [[nodiscard]] std::string message() const {
        if (err == 0) {
            return context;
        }
        return context + ": " + std::strerror(err);
    }
};

template <class T>
using Result = std::expected<T, Error>;

// An Error from the current errno.
[[nodiscard]] inline std::unexpected<Error> sys_error(std::string context) {
    return std::unexpected(Error{std::move(context), errno});
}
[[nodiscard]] inline std::unexpected<Error> sys_error(std::string context, int err) {
    return std::unexpected(Error{std::move(context), err});
}
[[nodiscard]] inline std::unexpected<Error> plain_error(std::string context) {
    return std::unexpected(Error{std::move(context), 0});
}

}  // namespace mpctl::common
