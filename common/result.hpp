#pragma once
// Result<T>: the one return type of the syscall layer (everything in common/, daemon/exec, daemon/store,
// daemon/service and the client's socket code). It never throws. Its Error says what kind of failure it
// was (code: what a caller may branch on), the errno when a syscall failed, and what was being done
// (context), so that the message a user finally reads names the file, the step and the reason.
//
// Handlers of the daemon turn an Error into a coded RequestError (proto/errors.hpp); the two mains turn
// one into an exit code. Nothing between the syscall and those places throws.

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>

namespace mpctl::common {

// What went wrong, as far as a caller needs to tell failures apart.
enum class Errc {
    failed,           // nothing a caller branches on: the message says it all
    not_found,        // no such command, file or directory (a spawn reports it as 127, as a shell does)
    redirection,      // a task's --stdin FILE cannot be opened (a spawn reports it as 1, as a shell's `<`)
    already_running,  // another mpctld holds the state dir or serves the socket
    invalid,          // malformed input: a line of an env file, a value of the config file
    damaged,          // the journal is damaged (SQLite: corrupt, or not a database): `mpctld --recover`
};

struct Error {
    Errc code = Errc::failed;
    int err = 0;          // errno, or 0 when the failure is not a syscall's
    std::string context;  // what was being attempted, e.g. "open /var/lib/mpctl/db"

    [[nodiscard]] std::string message() const {
        if (err == 0) {
            return context;
        }
        return context + ": " + std::strerror(err);
    }
};

template <class T>
using Result = std::expected<T, Error>;

// An Error from the current errno (or ERR).
[[nodiscard]] inline std::unexpected<Error> sys_error(std::string context, int err = errno,
                                                      Errc code = Errc::failed) {
    return std::unexpected(Error{code, err, std::move(context)});
}
// An Error that is not a syscall's.
[[nodiscard]] inline std::unexpected<Error> plain_error(std::string context, Errc code = Errc::failed) {
    return std::unexpected(Error{code, 0, std::move(context)});
}

}  // namespace mpctl::common
