#pragma once
// CliError: how any part of mpctl ends the command with a message and an exit code (README.md's "Exit
// codes"). Thrown, caught once in main, printed as "mpctl: <message>".

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace mpctl::cli {

namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int failure = 1;
inline constexpr int usage = 2;
inline constexpr int no_daemon = 3;
inline constexpr int unknown_id = 4;
inline constexpr int busy = 5;
inline constexpr int refused = 6;
inline constexpr int timeout = 124;
inline constexpr int mpctl_failed = 125;    // for commands that mirror a task
inline constexpr int cannot_execute = 126;  // as a shell: a command (or an argument) exec cannot take
inline constexpr int not_found = 127;       // as a shell: no such command
}  // namespace exit_code

class CliError : public std::runtime_error {
  public:
    CliError(int code, const std::string& message, nlohmann::json error = nullptr)
        : std::runtime_error(message), code_(code), error_(std::move(error)) {}
    [[nodiscard]] int code() const noexcept { return code_; }
    // The daemon's JSON-RPC error object, when the error came from the daemon.
    [[nodiscard]] const nlohmann::json& error() const noexcept { return error_; }

  private:
    int code_;
    nlohmann::json error_;
};

// The connection to the daemon ended under a request (EOF, a reset), with no answer: the daemon died, or was
// stopped. Commands that wait catch it to reconnect (reconnect.hpp); the others end with it as with any
// CliError.
class ConnectionLost : public CliError {
  public:
    using CliError::CliError;
};

}  // namespace mpctl::cli
