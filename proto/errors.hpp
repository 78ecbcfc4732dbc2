#pragma once
// Error codes on the wire. JSON-RPC's own codes for protocol faults, and application codes (-32001...) for
// the rest; every error also carries its snake_case name in error.data.error so clients can switch on a word.

#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mpctl::proto {

enum class ErrorCode : int {
    parse_error = -32700,
    invalid_request = -32600,
    method_not_found = -32601,
    invalid_params = -32602,
    internal_error = -32603,
    unknown_id = -32001,     // no task, pool, lock or segment by that id or name
    busy = -32002,           // a non-blocking acquire could not be satisfied
    timeout = -32003,        // a request's own timeout expired
    refused = -32004,        // permission (peer uid) or policy
    invalid_state = -32005,  // the object exists but cannot do that now (e.g. signal a finished task)
    shutting_down = -32006,  // the daemon is stopping and takes no new work
    io_error = -32007,       // the daemon could not read or write its files (disk full, permissions)
    deadlock = -32008,       // a blocking acquire would close a cycle of waiters: refused, not waited into
};

[[nodiscard]] std::string_view error_name(ErrorCode code);
[[nodiscard]] ErrorCode error_code_from_int(int code);

// Thrown by command handlers (and the spec validators) and turned into a JSON-RPC error reply by the daemon's
// single dispatch point. Never thrown across the syscall layer.
class RequestError : public std::runtime_error {
  public:
    RequestError(ErrorCode code, const std::string& message, nlohmann::json data = nullptr)
        : std::runtime_error(message), code_(code), data_(std::move(data)) {}

    [[nodiscard]] ErrorCode code() const noexcept { return code_; }
    [[nodiscard]] const nlohmann::json& data() const noexcept { return data_; }

  private:
    ErrorCode code_;
    nlohmann::json data_;
};

[[noreturn]] inline void throw_invalid_params(const std::string& message) {
    throw RequestError(ErrorCode::invalid_params, message);
}

}  // namespace mpctl::proto
