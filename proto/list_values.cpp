#include <mpctl/common/base64.hpp>
#include <mpctl/common/utf8.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/list_values.hpp>

namespace mpctl::proto {

using common::shm::ListValue;
using nlohmann::json;

namespace {

bool valid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        auto step = common::utf8_step(s, i);
        if (!step.valid) {
            return false;
        }
        i += step.length;
    }
    return true;
}

}  // namespace

common::Result<ListValue> list_value_from_json(const json& v) {
    switch (v.type()) {
        case json::value_t::null:
            return ListValue::none();
        case json::value_t::boolean:
            return ListValue::of_bool(v.get<bool>());
        case json::value_t::number_integer:
            return ListValue::of_int(v.get<int64_t>());
        case json::value_t::number_unsigned:
            if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
                return ListValue::of_real(static_cast<double>(v.get<uint64_t>()));  // past int64: a float
            }
            return ListValue::of_int(v.get<int64_t>());
        case json::value_t::number_float:
            // Any other number is a float, as Python's json reads it; an integer written past int64 too
            // (ShareableList cannot hold such an int; as a float it keeps its magnitude).
            return ListValue::of_real(v.get<double>());
        case json::value_t::string: {
            std::string s = v.get<std::string>();
            if (s.find('\0') != std::string::npos) {
                return common::plain_error("a string with a NUL (bytes go as {\"base64\": ...})",
                                           common::Errc::invalid);
            }
            if (!valid_utf8(s)) {
                return common::plain_error("a string that is not UTF-8 (bytes go as {\"base64\": ...})",
                                           common::Errc::invalid);
            }
            return ListValue::of_string(std::move(s));
        }
        case json::value_t::object:
            if (v.size() == 1 && v.contains("base64") && v["base64"].is_string()) {
                auto bytes = common::base64_decode(v["base64"].get<std::string>());
                if (!bytes) {
                    return common::plain_error("{\"base64\": ...} that is not base64", common::Errc::invalid);
                }
                return ListValue::of_bytes(std::move(*bytes));
            }
            [[fallthrough]];
        default:
            return common::plain_error(
                "not an item of a list: " + dump_json(v).substr(0, 60) +
                    " (integers, numbers, true/false, null, strings, {\"base64\": ...})",
                common::Errc::invalid);
    }
}

json list_value_to_json(const ListValue& v) {
    switch (v.kind) {
        case ListValue::Kind::integer:
            return v.integer;
        case ListValue::Kind::real:
            return v.real;
        case ListValue::Kind::boolean:
            return v.boolean;
        case ListValue::Kind::none:
            return nullptr;
        case ListValue::Kind::string:
            return v.text;
        case ListValue::Kind::bytes:
            return {{"base64", common::base64_encode(v.text)}};
    }
    return nullptr;
}

common::Result<ListValue> list_value_from_word(const std::string& word) {
    return list_value_from_json(json_value_from_word(word));  // a string is checked to be UTF-8 there
}

}  // namespace mpctl::proto
