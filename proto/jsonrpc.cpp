#include <mpctl/proto/jsonrpc.hpp>

namespace mpctl::proto {

Request parse_request(const json& message) {
    if (!message.is_object()) {
        throw RequestError(ErrorCode::invalid_request, "a request must be a JSON object");
    }
    auto version = message.find("jsonrpc");
    if (version == message.end() || *version != "2.0") {
        throw RequestError(ErrorCode::invalid_request, "\"jsonrpc\" must be \"2.0\"");
    }
    Request req;
    auto id = message.find("id");
    if (id == message.end()) {
        req.is_notification = true;
    } else if (id->is_string() || id->is_number() || id->is_null()) {
        req.id = *id;
    } else {
        throw RequestError(ErrorCode::invalid_request, "\"id\" must be a string, a number or null");
    }
    auto method = message.find("method");
    if (method == message.end() || !method->is_string()) {
        throw RequestError(ErrorCode::invalid_request, "\"method\" must be a string");
    }
    req.method = method->get<std::string>();
    auto params = message.find("params");
    if (params == message.end()) {
        req.params = json::object();
    } else if (params->is_object() || params->is_array()) {
        req.params = *params;
    } else {
        throw RequestError(ErrorCode::invalid_request, "\"params\" must be an object or an array");
    }
    return req;
}

json make_request(const json& id, std::string_view method, json params) {
    return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
}

json make_notification(std::string_view method, json params) {
    return json{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}};
}

json make_result(const json& id, json result) {
    return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json make_error(const json& id, ErrorCode code, std::string_view message, json data) {
    json error_data = data.is_object() ? std::move(data) : json::object();
    error_data["error"] = error_name(code);
    return json{
        {"jsonrpc", "2.0"},
        {"id", id},
        {"error", {{"code", static_cast<int>(code)}, {"message", message}, {"data", std::move(error_data)}}}};
}

std::string encode_line(const json& message) {
    std::string line = message.dump(-1, ' ', false, json::error_handler_t::replace);
    line.push_back('\n');
    return line;
}

}  // namespace mpctl::proto
