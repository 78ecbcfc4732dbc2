// libFuzzer target: one request line as it comes off the socket, through proto::parse_request_line (the
// bounded-depth JSON builder of proto/bounded_json, then the envelope).
//
// Besides not crashing (ASan, UBSan) and not recursing without bound (nesting past k_max_json_depth is
// refused before it is built), the verdict must be the one a second, independent reading of the line gives:
//   - parse_error exactly when the JSON is malformed before it gets too deep (or holds a NUL byte, which
//     JSON never does), too deep exactly when it nests past the bound, and nothing accepted nests deeper;
//   - a rejected line is answered with its own id when it has a valid one, else null (JSON-RPC 2.0 §5),
//     and that answer is one valid JSON line;
//   - an accepted request echoes its id as text that reads back as the same id, and written again from
//     what was parsed (id as echoed, method, params) it is accepted again, the same;
//   - the same line always gets the same verdict.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <mpctl/proto/bounded_json.hpp>
#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/jsonrpc.hpp>

namespace {

using mpctl::proto::ErrorCode;
using mpctl::proto::k_max_json_depth;
using mpctl::proto::Rejection;
using mpctl::proto::Request;
using nlohmann::json;

[[noreturn]] void fail(const char* what, std::string_view line) {
    std::fprintf(stderr, "fuzz_jsonrpc: %s\nline: %.*s\n", what,
                 static_cast<int>(std::min<size_t>(line.size(), 400)), line.data());
    std::abort();
}

// The second reading: nlohmann's own SAX parser with a counter instead of a builder. It records how deep
// the text nests before the parse ends (at its end, or at the first error) and whether it is valid JSON.
class DepthCounter {
  public:
    bool null() { return true; }
    bool boolean(bool) { return true; }
    bool number_integer(json::number_integer_t) { return true; }
    bool number_unsigned(json::number_unsigned_t) { return true; }
    bool number_float(json::number_float_t, const std::string&) { return true; }
    bool string(std::string&) { return true; }
    bool binary(json::binary_t&) { return true; }
    bool start_object(std::size_t) { return open(); }
    bool start_array(std::size_t) { return open(); }
    bool key(std::string&) { return true; }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

    std::size_t max_depth = 0;

  private:
    bool open() {
        max_depth = std::max(max_depth, ++depth_);
        // The count need go no further than one past the bound; stopping there keeps this reading cheap.
        return depth_ <= k_max_json_depth;
    }
    bool close() {
        --depth_;
        return true;
    }
    std::size_t depth_ = 0;
};

struct Reading {
    bool valid = false;
    std::size_t depth = 0;  // at most k_max_json_depth + 1
};

Reading read_independently(std::string_view line) {
    Reading r;
    // RFC 8259 has no place for a raw NUL byte: not between tokens, not in a string (where control
    // characters are escaped). nlohmann's lexer takes one for the end of the input, so this reading cannot
    // lean on it there: a text with a NUL is not JSON, however deep it goes before it.
    if (line.find('\0') != std::string_view::npos) {
        return r;
    }
    // The protocol's one addition to JSON: a lone \udc80 to \udcff escape is a byte (PROTOCOL.md, "Bytes
    // in strings"), which nlohmann's lexer refuses as a lone surrogate. The lexical rewrite the daemon
    // makes for it is applied first; what it leaves is read by nlohmann alone.
    auto marked = mpctl::proto::mark_escaped_bytes(line);
    std::string_view text = marked ? std::string_view(*marked) : line;
    DepthCounter counter;
    try {
        r.valid = json::sax_parse(text, &counter, json::input_format_t::json, true);
    } catch (const json::exception&) {
        r.valid = false;
    }
    r.depth = counter.max_depth;
    if (r.depth > k_max_json_depth) {
        r.valid = false;  // stopped there: the rest was not read
    }
    return r;
}

bool is_id(const json& id) {
    if (id.is_string() || id.is_null() || id.is_number_integer()) {
        return true;
    }
    if (!id.is_number_float()) {
        return false;
    }
    double v = id.get<double>();
    return std::isfinite(v) && std::trunc(v) == v;
}

// ID_TEXT as an answer writes it must read back as EXPECTED (numbers compare by value: 1e3 is 1000).
void check_echo(std::string_view id_text, const json& expected, std::string_view line) {
    json echoed = json::parse(id_text, nullptr, false);
    if (echoed.is_discarded()) {
        fail("an answer would echo an id that is not JSON", line);
    }
    if (echoed != expected) {
        fail("an answer would echo another id than the request's", line);
    }
}

std::string write_request(const Request& req) {
    std::string line = R"({"jsonrpc":"2.0",)";
    if (!req.is_notification) {
        line += R"("id":)" + req.id_text + ",";
    }
    // As the daemon writes JSON: bytes that are not UTF-8 go out as \udc80 to \udcff escapes.
    line += R"("method":)" + mpctl::proto::dump_json(json(req.method)) + R"(,"params":)" +
            mpctl::proto::dump_json(req.params) + "}";
    return line;
}

void check_accepted(const Request& req, const json& message, std::string_view line) {
    if (!message.is_object() || !req.params.is_object()) {
        fail("accepted a request that is not an object, or whose params are not one", line);
    }
    if (req.is_notification != !message.contains("id")) {
        fail("a notification is a request without an id, and only that", line);
    }
    if (!req.is_notification) {
        check_echo(req.id_text, message.at("id"), line);
    }
    std::string again = write_request(req);
    auto reparsed = mpctl::proto::parse_request_line(again);
    if (!reparsed) {
        fail("a request written again from what was parsed is rejected", again);
    }
    if (reparsed->method != req.method || reparsed->id_text != req.id_text ||
        reparsed->is_notification != req.is_notification || reparsed->params != req.params) {
        fail("a request written again from what was parsed reads differently", again);
    }
}

void check_rejected(const Rejection& r, const Reading& reading, std::string_view line) {
    if (r.code == ErrorCode::parse_error) {
        if (reading.valid || reading.depth > k_max_json_depth) {
            fail("parse_error for JSON that is valid, or too deep", line);
        }
    } else if (r.code != ErrorCode::invalid_request) {
        fail("a line is rejected with a code other than parse_error or invalid_request", line);
    }
    if (r.code == ErrorCode::invalid_request && reading.depth <= k_max_json_depth && !reading.valid) {
        fail("invalid_request for malformed JSON", line);
    }
    // The id echo rule: the message's own id when it has a valid one, else null.
    json expected_id = nullptr;
    if (reading.valid) {
        json message = mpctl::proto::parse_json_text(line);
        if (message.is_object() && message.contains("id") && is_id(message["id"])) {
            expected_id = message["id"];
        }
    }
    check_echo(r.id_text, expected_id, line);
    std::string answer = mpctl::proto::encode_error_line(r.id_text, r.code, r.message);
    if (answer.empty() || answer.back() != '\n') {
        fail("an error answer is not one line", line);
    }
    json parsed = json::parse(std::string_view(answer).substr(0, answer.size() - 1), nullptr, false);
    if (parsed.is_discarded() || parsed.count("id") == 0 || parsed["id"] != expected_id ||
        !parsed["error"]["code"].is_number_integer()) {
        fail("an error answer is not a valid JSON-RPC error", line);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view line(reinterpret_cast<const char*>(data), size);
    auto first = mpctl::proto::parse_request_line(line);
    auto second = mpctl::proto::parse_request_line(line);
    if (first.has_value() != second.has_value() ||
        (first && (first->id_text != second->id_text || first->method != second->method)) ||
        (!first &&
         (first.error().code != second.error().code || first.error().id_text != second.error().id_text))) {
        fail("the same line got two verdicts", line);
    }
    Reading reading = read_independently(line);
    bool too_deep = reading.depth > k_max_json_depth;
    if (first) {
        if (!reading.valid || too_deep) {
            fail("accepted a line that is not valid JSON, or nests too deep", line);
        }
        check_accepted(*first, mpctl::proto::parse_json_text(line), line);
    } else {
        if (too_deep != (first.error().code == ErrorCode::invalid_request &&
                         first.error().message.starts_with("JSON nested deeper than "))) {
            fail("too deep is said of a line exactly when it nests past the bound", line);
        }
        check_rejected(first.error(), reading, line);
    }
    return 0;
}
