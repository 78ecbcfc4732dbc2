#include <mpctl/proto/errors.hpp>

namespace mpctl::proto {

std::string_view error_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::parse_error:
            return "parse_error";
        case ErrorCode::invalid_request:
            return "invalid_request";
        case ErrorCode::method_not_found:
            return "method_not_found";
        case ErrorCode::invalid_params:
            return "invalid_params";
        case ErrorCode::internal_error:
            return "internal_error";
        case ErrorCode::unknown_id:
            return "unknown_id";
        case ErrorCode::busy:
            return "busy";
        case ErrorCode::timeout:
            return "timeout";
        case ErrorCode::refused:
            return "refused";
        case ErrorCode::invalid_state:
            return "invalid_state";
        case ErrorCode::shutting_down:
            return "shutting_down";
        case ErrorCode::io_error:
            return "io_error";
        case ErrorCode::deadlock:
            return "deadlock";
    }
    return "internal_error";
}

ErrorCode error_code_from_int(int code) {
    switch (code) {
        case -32700:
        case -32600:
        case -32601:
        case -32602:
        case -32603:
        case -32001:
        case -32002:
        case -32003:
        case -32004:
        case -32005:
        case -32006:
        case -32007:
        case -32008:
            return static_cast<ErrorCode>(code);
        default:
            return ErrorCode::internal_error;
    }
}

}  // namespace mpctl::proto
