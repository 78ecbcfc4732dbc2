#include <cmath>
#include <optional>

#include <mpctl/proto/bounded_json.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/jsonrpc.hpp>

namespace mpctl::proto {

namespace {

[[noreturn]] void invalid(const std::string& message) {
    throw RequestError(ErrorCode::invalid_request, message);
}

bool is_envelope_member(const std::string& key) {
    return key == "jsonrpc" || key == "id" || key == "method" || key == "params";
}

// JSON Schema's "integer" is a number whose value is whole, however it is written (1e3, 1.0): those are
// ids, echoed by their text; 1.5 is not.
bool is_whole(const json& number) {
    if (!number.is_number_float()) {
        return true;
    }
    double v = number.get<double>();
    return std::isfinite(v) && std::trunc(v) == v;
}

std::string dump(const json& value) {
    return dump_json(value);
}

// The text an answer echoes ID with: its own text as it came for a float written whole (1e3), else its
// JSON; nullopt when ID is not an id (an object, an array, a boolean, 1.5).
std::optional<std::string> id_text_of(const json& id, std::string_view raw_id_text) {
    if (!(id.is_string() || id.is_null() || (id.is_number() && is_whole(id)))) {
        return std::nullopt;
    }
    return id.is_number_float() && !raw_id_text.empty() ? std::string(raw_id_text) : dump(id);
}

// The id to answer a rejected message with: its own when it is a valid id, else null (JSON-RPC 2.0 §5).
std::string readable_id_text(const json& message, std::string_view raw_id_text) {
    auto id = message.find("id");  // end() for anything but an object
    if (id == message.end()) {
        return "null";
    }
    return id_text_of(*id, raw_id_text).value_or("null");
}

}  // namespace

Request parse_request(const json& message, std::string_view raw_id_text) {
    if (!message.is_object()) {
        invalid("a request must be a JSON object");
    }
    for (const auto& [key, value] : message.items()) {
        if (!is_envelope_member(key)) {
            invalid("unknown member \"" + key + "\" (a request has jsonrpc, id, method and params)");
        }
    }
    auto version = message.find("jsonrpc");
    if (version == message.end() || *version != "2.0") {
        invalid("\"jsonrpc\" must be \"2.0\"");
    }
    Request req;
    auto id = message.find("id");
    if (id == message.end()) {
        req.is_notification = true;
    } else if (auto text = id_text_of(*id, raw_id_text)) {
        req.id = *id;
        req.id_text = std::move(*text);
    } else {
        invalid("\"id\" must be a string, an integer or null");
    }
    auto method = message.find("method");
    if (method == message.end() || !method->is_string()) {
        invalid("\"method\" must be a string");
    }
    req.method = method->get<std::string>();
    auto params = message.find("params");
    if (params == message.end()) {
        req.params = json::object();
    } else if (params->is_object()) {
        req.params = *params;
    } else {
        invalid("\"params\" must be an object (or absent)");
    }
    return req;
}

std::expected<Request, Rejection> parse_request_line(std::string_view line) {
    BoundedJson parsed = parse_bounded_json(line, k_max_json_depth, "id");
    switch (parsed.outcome) {
        case BoundedJson::Outcome::syntax_error:
            return std::unexpected(Rejection{"null", ErrorCode::parse_error, "invalid JSON"});
        case BoundedJson::Outcome::too_deep:
            return std::unexpected(
                Rejection{"null", ErrorCode::invalid_request,
                          "JSON nested deeper than " + std::to_string(k_max_json_depth) + " levels"});
        case BoundedJson::Outcome::ok:
            break;
    }
    try {
        return parse_request(parsed.value, parsed.raw_member_text);
    } catch (const RequestError& e) {
        return std::unexpected(
            Rejection{readable_id_text(parsed.value, parsed.raw_member_text), e.code(), e.what()});
    }
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

namespace {
json error_object(ErrorCode code, std::string_view message, json data) {
    json error_data = data.is_object() ? std::move(data) : json::object();
    error_data["error"] = error_name(code);
    return json{{"code", static_cast<int>(code)}, {"message", message}, {"data", std::move(error_data)}};
}
}  // namespace

json make_error(const json& id, ErrorCode code, std::string_view message, json data) {
    return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", error_object(code, message, std::move(data))}};
}

std::string encode_line(const json& message) {
    std::string line = dump(message);
    line.push_back('\n');
    return line;
}

std::string encode_result_text_line(std::string_view id_text, std::string_view result_text) {
    std::string line;
    line.reserve(32 + id_text.size() + result_text.size());
    line += R"({"jsonrpc":"2.0","id":)";
    line += id_text;
    line += R"(,"result":)";
    line += result_text;
    line += "}\n";
    return line;
}

std::string encode_result_line(std::string_view id_text, const json& result) {
    return encode_result_text_line(id_text, dump(result));
}

std::string encode_error_line(std::string_view id_text, ErrorCode code, std::string_view message, json data) {
    std::string line = R"({"jsonrpc":"2.0","id":)";
    line += id_text;
    line += R"(,"error":)";
    line += dump(error_object(code, message, std::move(data)));
    line += "}\n";
    return line;
}

}  // namespace mpctl::proto
