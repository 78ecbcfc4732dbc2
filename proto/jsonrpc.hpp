#pragma once
// JSON-RPC 2.0 messages as mpctl sends them: compact, one per line.

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <mpctl/proto/errors.hpp>

namespace mpctl::proto {

using json = nlohmann::json;

// A parsed incoming request. A request without "id" is a notification: it gets no reply.
struct Request {
    json id;  // null for notifications
    bool is_notification = false;
    std::string method;
    json params;  // object or array; an absent params is an empty object
};

// Validates the JSON-RPC envelope; throws RequestError(invalid_request) on a malformed one.
[[nodiscard]] Request parse_request(const json& message);

[[nodiscard]] json make_request(const json& id, std::string_view method, json params);
[[nodiscard]] json make_notification(std::string_view method, json params);
[[nodiscard]] json make_result(const json& id, json result);
[[nodiscard]] json make_error(const json& id, ErrorCode code, std::string_view message, json data = nullptr);

// One wire line: compact JSON plus '\n'. Invalid UTF-8 in strings is replaced, never thrown on.
[[nodiscard]] std::string encode_line(const json& message);

}  // namespace mpctl::proto
