#pragma once
// JSON-RPC 2.0 messages as mpctl sends them: compact, one per line.

#include <expected>
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
    // The id as the answer echoes it: its exact text for a number (1e3 stays 1e3), else its JSON.
    std::string id_text = "null";
    bool is_notification = false;
    std::string method;
    json params;  // an object; an absent params is an empty object
};

// Validates the JSON-RPC envelope of a parsed MESSAGE; throws RequestError(invalid_request) on a malformed
// one. ID_TEXT is the id's text as it came, when re-serialising the parsed id would not give it back.
[[nodiscard]] Request parse_request(const json& message, std::string_view raw_id_text = {});

// Why a line is not a request, and the id to answer with (null when the id itself could not be read).
struct Rejection {
    std::string id_text = "null";
    ErrorCode code = ErrorCode::invalid_request;
    std::string message;
};

// Parses one request line as it came off the socket: JSON nested at most k_max_json_depth levels (refused
// before anything deeper is built), then the envelope.
[[nodiscard]] std::expected<Request, Rejection> parse_request_line(std::string_view line);

[[nodiscard]] json make_request(const json& id, std::string_view method, json params);
[[nodiscard]] json make_notification(std::string_view method, json params);
[[nodiscard]] json make_result(const json& id, json result);
[[nodiscard]] json make_error(const json& id, ErrorCode code, std::string_view message, json data = nullptr);

// One wire line: compact JSON plus '\n'. Invalid UTF-8 in strings is replaced, never thrown on.
[[nodiscard]] std::string encode_line(const json& message);

// Answer lines for a request whose id reads ID_TEXT (Request::id_text), built without copying the result
// into an envelope object. RESULT_TEXT is a result already encoded as JSON text.
[[nodiscard]] std::string encode_result_line(std::string_view id_text, const json& result);
[[nodiscard]] std::string encode_result_text_line(std::string_view id_text, std::string_view result_text);
[[nodiscard]] std::string encode_error_line(std::string_view id_text, ErrorCode code,
                                            std::string_view message, json data = nullptr);

}  // namespace mpctl::proto
