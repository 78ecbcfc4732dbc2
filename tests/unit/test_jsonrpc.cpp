#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/jsonrpc.hpp>

using mpctl::proto::ErrorCode;
using mpctl::proto::parse_request;
using mpctl::proto::RequestError;
using nlohmann::json;

namespace {

// The code of the RequestError that parse_request throws for MESSAGE, or nullopt if it accepts it.
std::optional<ErrorCode> envelope_rejection(const json& message) {
    try {
        (void)parse_request(message);
    } catch (const RequestError& e) {
        return e.code();
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("a well-formed request is parsed with its id, method and params", "[unit][jsonrpc]") {
    auto req =
        parse_request(json::parse(R"({"jsonrpc":"2.0","id":7,"method":"task.get","params":{"id":3}})"));
    CHECK_FALSE(req.is_notification);
    CHECK(req.id == 7);
    CHECK(req.method == "task.get");
    CHECK(req.params == json{{"id", 3}});
}

TEST_CASE("a request id may be a string, an integer or null", "[unit][jsonrpc]") {
    for (const json& id : {json("abc"), json(""), json(42), json(-1), json(nullptr)}) {
        json msg = {{"jsonrpc", "2.0"}, {"id", id}, {"method", "m"}};
        auto req = parse_request(msg);
        CHECK_FALSE(req.is_notification);
        CHECK(req.id == id);
        CHECK(req.id_text == id.dump());
    }
}

// JSON Schema's "integer" is a whole number however it is written; an id is echoed as it was written.
TEST_CASE("an id written as a whole float is echoed by its exact text", "[unit][jsonrpc]") {
    for (std::string text : {"1e3", "1.0", "99999999999999999999999", "-2E+2"}) {
        auto req = mpctl::proto::parse_request_line(R"({"jsonrpc":"2.0","id":)" + text + R"(,"method":"m"})");
        REQUIRE(req.has_value());
        CHECK(req->id_text == text);
    }
    // Integers that fit 64 bits echo by value.
    auto big =
        mpctl::proto::parse_request_line(R"({"jsonrpc":"2.0","id":18446744073709551615,"method":"m"})");
    REQUIRE(big.has_value());
    CHECK(big->id_text == "18446744073709551615");
}

TEST_CASE("an id that is not a whole number is an invalid request answered with id null", "[unit][jsonrpc]") {
    for (std::string text : {"1.5", "-0.25", "1e-3"}) {
        auto req = mpctl::proto::parse_request_line(R"({"jsonrpc":"2.0","id":)" + text + R"(,"method":"m"})");
        REQUIRE_FALSE(req.has_value());
        CHECK(req.error().code == ErrorCode::invalid_request);
        CHECK(req.error().id_text == "null");
    }
}

TEST_CASE("a request nested deeper than the bound is refused before it is built, at any depth of the line",
          "[unit][jsonrpc]") {
    // 130,000 levels crashed the daemon's loop thread (stack exhaustion in a recursive parser).
    for (size_t n : {size_t{65}, size_t{1000}, size_t{130000}}) {
        for (std::string member : {"params", "id"}) {
            std::string value = member == "params"
                                    ? R"({"x":)" + std::string(n, '[') + std::string(n, ']') + "}"
                                    : std::string(n, '[') + std::string(n, ']');
            auto req = mpctl::proto::parse_request_line(R"({"jsonrpc":"2.0","id":1,"method":"m",")" + member +
                                                        R"(":)" + value + "}");
            REQUIRE_FALSE(req.has_value());
            CHECK(req.error().code == ErrorCode::invalid_request);
            CHECK_THAT(req.error().message, Catch::Contains("nested deeper than 64"));
        }
    }
    // Unclosed nesting is refused the same way, and a notification is no different.
    auto open = mpctl::proto::parse_request_line(R"({"jsonrpc":"2.0","method":"m","params":)" +
                                                 std::string(200000, '['));
    REQUIRE_FALSE(open.has_value());
    CHECK(open.error().code == ErrorCode::invalid_request);
    // 64 levels in all (the envelope is the first) are fine.
    std::string inner = std::string(62, '[') + std::string(62, ']');
    auto ok = mpctl::proto::parse_request_line(R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"x":)" +
                                               inner + "}}");
    CHECK(ok.has_value());
}

TEST_CASE("a line that is not JSON is a parse error with id null", "[unit][jsonrpc]") {
    for (std::string line : {"{", "nope", R"({"jsonrpc":"2.0","id":1,"method":"m"} trailing)", ""}) {
        auto req = mpctl::proto::parse_request_line(line);
        REQUIRE_FALSE(req.has_value());
        CHECK(req.error().code == ErrorCode::parse_error);
        CHECK(req.error().id_text == "null");
    }
}

TEST_CASE("a request line with a NUL byte after its JSON is a parse error, not the request before the NUL",
          "[unit][jsonrpc]") {
    // Found by fuzz_jsonrpc: the parser stopped at the NUL, so this line stopped the daemon.
    using namespace std::string_literals;
    for (std::string line : {R"({"jsonrpc":"2.0","id":1,"method":"daemon.stop"})"s + '\0' + "ignored"s,
                             R"({"jsonrpc":"2.0","id":1,"method":"daemon.stop"})"s + '\0',
                             R"({"jsonrpc":"2.0","id":1,"method":"m"} )"s + '\0' + "}"s}) {
        auto req = mpctl::proto::parse_request_line(line);
        REQUIRE_FALSE(req.has_value());
        CHECK(req.error().code == ErrorCode::parse_error);
        CHECK(req.error().id_text == "null");
    }
}

TEST_CASE("an invalid request echoes its id when the id itself is valid", "[unit][jsonrpc]") {
    auto req = mpctl::proto::parse_request_line(R"({"jsonrpc":"2.0","id":"a","method":5})");
    REQUIRE_FALSE(req.has_value());
    CHECK(req.error().id_text == R"("a")");
    auto floaty = mpctl::proto::parse_request_line(R"({"jsonrpc":"2.0","id":1e3,"method":5})");
    REQUIRE_FALSE(floaty.has_value());
    CHECK(floaty.error().id_text == "1e3");
}

TEST_CASE("a request with a member the envelope does not have is invalid", "[unit][jsonrpc]") {
    CHECK(envelope_rejection({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "m"}, {"extra", 1}}) ==
          ErrorCode::invalid_request);
    CHECK(envelope_rejection({{"jsonrpc", "2.0"}, {"method", "m"}, {"result", 1}}) ==
          ErrorCode::invalid_request);
}

TEST_CASE("a request whose id is an object, an array or a boolean is invalid", "[unit][jsonrpc]") {
    for (const json& id : {json::object(), json::array(), json(true), json(false), json::array({1})}) {
        json msg = {{"jsonrpc", "2.0"}, {"id", id}, {"method", "m"}};
        CHECK(envelope_rejection(msg) == ErrorCode::invalid_request);
    }
}

TEST_CASE("a request without an id is a notification", "[unit][jsonrpc]") {
    auto req = parse_request(json::parse(R"({"jsonrpc":"2.0","method":"log.note","params":{"a":1}})"));
    CHECK(req.is_notification);
    CHECK(req.id.is_null());
    CHECK(req.method == "log.note");
    CHECK(req.params == json{{"a", 1}});
}

TEST_CASE("a request with a null id is not a notification", "[unit][jsonrpc]") {
    auto req = parse_request(json::parse(R"({"jsonrpc":"2.0","id":null,"method":"m"})"));
    CHECK_FALSE(req.is_notification);
    CHECK(req.id.is_null());
}

TEST_CASE("a request without params gets an empty params object", "[unit][jsonrpc]") {
    auto req = parse_request(json::parse(R"({"jsonrpc":"2.0","id":1,"method":"daemon.status"})"));
    CHECK(req.params.is_object());
    CHECK(req.params.empty());
}

// The schema's "params": {"type": "object"}: an array (by-position params) is refused with the envelope.
TEST_CASE("params may be an object and nothing else", "[unit][jsonrpc]") {
    CHECK_FALSE(
        envelope_rejection({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "m"}, {"params", json::object()}}));
    for (const json& params : {json(1), json("x"), json(true), json(nullptr), json(2.5), json::array()}) {
        json msg = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "m"}, {"params", params}};
        CHECK(envelope_rejection(msg) == ErrorCode::invalid_request);
    }
}

TEST_CASE("a request without jsonrpc 2.0 is invalid", "[unit][jsonrpc]") {
    CHECK(envelope_rejection({{"id", 1}, {"method", "m"}}) == ErrorCode::invalid_request);
    CHECK(envelope_rejection({{"jsonrpc", "1.0"}, {"id", 1}, {"method", "m"}}) == ErrorCode::invalid_request);
    CHECK(envelope_rejection({{"jsonrpc", 2.0}, {"id", 1}, {"method", "m"}}) == ErrorCode::invalid_request);
    CHECK(envelope_rejection({{"jsonrpc", 2}, {"id", 1}, {"method", "m"}}) == ErrorCode::invalid_request);
    CHECK(envelope_rejection({{"jsonrpc", nullptr}, {"id", 1}, {"method", "m"}}) ==
          ErrorCode::invalid_request);
    CHECK(envelope_rejection({{"jsonrpc", "2.0 "}, {"id", 1}, {"method", "m"}}) ==
          ErrorCode::invalid_request);
}

TEST_CASE("a request without a string method is invalid", "[unit][jsonrpc]") {
    CHECK(envelope_rejection({{"jsonrpc", "2.0"}, {"id", 1}}) == ErrorCode::invalid_request);
    CHECK(envelope_rejection({{"jsonrpc", "2.0"}, {"id", 1}, {"method", 5}}) == ErrorCode::invalid_request);
    CHECK(envelope_rejection({{"jsonrpc", "2.0"}, {"id", 1}, {"method", nullptr}}) ==
          ErrorCode::invalid_request);
    CHECK(envelope_rejection({{"jsonrpc", "2.0"}, {"id", 1}, {"method", json::array({"m"})}}) ==
          ErrorCode::invalid_request);
}

TEST_CASE("a message that is not an object is an invalid request", "[unit][jsonrpc]") {
    for (const json& msg : {json::array(), json::array({json{{"jsonrpc", "2.0"}}}), json(1), json("x"),
                            json(nullptr), json(true)}) {
        CHECK(envelope_rejection(msg) == ErrorCode::invalid_request);
    }
}

TEST_CASE("make_request, make_notification and make_result build JSON-RPC 2.0 envelopes", "[unit][jsonrpc]") {
    json req = mpctl::proto::make_request(3, "task.get", {{"id", 9}});
    CHECK(req == json::parse(R"({"jsonrpc":"2.0","id":3,"method":"task.get","params":{"id":9}})"));
    auto parsed = parse_request(req);
    CHECK(parsed.method == "task.get");
    CHECK(parsed.id == 3);

    json note = mpctl::proto::make_notification("task.completed", {{"task", 1}});
    CHECK(note == json::parse(R"({"jsonrpc":"2.0","method":"task.completed","params":{"task":1}})"));
    CHECK_FALSE(note.contains("id"));
    CHECK(parse_request(note).is_notification);

    json result = mpctl::proto::make_result("abc", {{"ok", true}});
    CHECK(result == json::parse(R"({"jsonrpc":"2.0","id":"abc","result":{"ok":true}})"));
}

TEST_CASE("make_error carries the code, the message and the error's name in data.error", "[unit][jsonrpc]") {
    json e = mpctl::proto::make_error(4, ErrorCode::unknown_id, "no task 5");
    CHECK(e["jsonrpc"] == "2.0");
    CHECK(e["id"] == 4);
    CHECK_FALSE(e.contains("result"));
    CHECK(e["error"]["code"] == -32001);
    CHECK(e["error"]["message"] == "no task 5");
    CHECK(e["error"]["data"] == json{{"error", "unknown_id"}});
}

TEST_CASE("make_error keeps the fields of object data and adds the error name", "[unit][jsonrpc]") {
    json e = mpctl::proto::make_error(nullptr, ErrorCode::busy, "held", {{"holder", 42}});
    CHECK(e["id"].is_null());
    CHECK(e["error"]["code"] == -32002);
    CHECK(e["error"]["data"]["holder"] == 42);
    CHECK(e["error"]["data"]["error"] == "busy");
}

TEST_CASE("make_error with non-object data still gives an object with the error name", "[unit][jsonrpc]") {
    json e = mpctl::proto::make_error(1, ErrorCode::invalid_params, "bad", json::array({1, 2}));
    CHECK(e["error"]["data"] == json{{"error", "invalid_params"}});
}

TEST_CASE("every error code has a snake_case name and survives the int round trip", "[unit][jsonrpc]") {
    const std::pair<ErrorCode, const char*> all[] = {
        {ErrorCode::parse_error, "parse_error"},
        {ErrorCode::invalid_request, "invalid_request"},
        {ErrorCode::method_not_found, "method_not_found"},
        {ErrorCode::invalid_params, "invalid_params"},
        {ErrorCode::internal_error, "internal_error"},
        {ErrorCode::unknown_id, "unknown_id"},
        {ErrorCode::busy, "busy"},
        {ErrorCode::timeout, "timeout"},
        {ErrorCode::refused, "refused"},
        {ErrorCode::invalid_state, "invalid_state"},
        {ErrorCode::shutting_down, "shutting_down"},
        {ErrorCode::io_error, "io_error"},
    };
    for (const auto& [code, name] : all) {
        CHECK(mpctl::proto::error_name(code) == name);
        CHECK(mpctl::proto::error_code_from_int(static_cast<int>(code)) == code);
        json e = mpctl::proto::make_error(1, code, "m");
        CHECK(e["error"]["data"]["error"] == name);
        CHECK(e["error"]["code"] == static_cast<int>(code));
    }
    CHECK(static_cast<int>(ErrorCode::parse_error) == -32700);
    CHECK(static_cast<int>(ErrorCode::invalid_request) == -32600);
    CHECK(static_cast<int>(ErrorCode::method_not_found) == -32601);
    CHECK(static_cast<int>(ErrorCode::invalid_params) == -32602);
}

TEST_CASE("an unknown error code number maps to internal_error", "[unit][jsonrpc]") {
    CHECK(mpctl::proto::error_code_from_int(0) == ErrorCode::internal_error);
    CHECK(mpctl::proto::error_code_from_int(-32000) == ErrorCode::internal_error);
    CHECK(mpctl::proto::error_code_from_int(12345) == ErrorCode::internal_error);
}

TEST_CASE("encode_line writes one compact line ending in a newline", "[unit][jsonrpc]") {
    json msg = mpctl::proto::make_result(1, {{"text", "a\nb"}, {"n", 1}});
    std::string line = mpctl::proto::encode_line(msg);
    REQUIRE_FALSE(line.empty());
    CHECK(line.back() == '\n');
    CHECK(line.find('\n') == line.size() - 1);  // the string's newline is escaped
    CHECK(line.find(' ') == std::string::npos);
    CHECK(json::parse(line) == msg);
}

TEST_CASE("encode_line writes bytes that are not UTF-8 as lone surrogate escapes, and they parse back",
          "[unit][jsonrpc]") {
    json msg = mpctl::proto::make_result(1, std::string("ok\xff\xfe"));
    std::string line;
    REQUIRE_NOTHROW(line = mpctl::proto::encode_line(msg));
    CHECK(line.find(R"("ok\udcff\udcfe")") != std::string::npos);
    CHECK(mpctl::proto::parse_json_text(line)["result"] == "ok\xff\xfe");
}
