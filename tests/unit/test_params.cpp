#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/params.hpp>

using mpctl::proto::ErrorCode;
using mpctl::proto::Params;
using mpctl::proto::RequestError;
using nlohmann::json;

namespace {

// The message of the invalid_params error FN throws; fails the test if it throws anything else or nothing.
template <class Fn>
std::string invalid_params_message(Fn&& fn) {
    try {
        fn();
    } catch (const RequestError& e) {
        CHECK(e.code() == ErrorCode::invalid_params);
        return e.what();
    }
    FAIL("no RequestError was thrown");
    return {};
}

template <class T>
T convert(const json& v) {
    return Params::convert<T>(v, "params.x");
}

}  // namespace

TEST_CASE("params must be an object, and null counts as an empty object", "[unit][params]") {
    CHECK_NOTHROW(Params(json::object()));
    Params empty(nullptr);
    CHECK(empty.raw().is_object());
    CHECK(empty.raw().empty());
    CHECK(invalid_params_message([] { Params p(json::array()); }) == "params: expected an object");
    CHECK(invalid_params_message([] { Params p(json(3), "params.tasks[2]"); }) ==
          "params.tasks[2]: expected an object");
}

TEST_CASE("has is false for a missing key and for a null value", "[unit][params]") {
    Params p(json{{"a", 1}, {"b", nullptr}});
    CHECK(p.has("a"));
    CHECK_FALSE(p.has("b"));
    CHECK_FALSE(p.has("c"));
}

TEST_CASE("present gives a null value too, and nullptr only for a missing key", "[unit][params]") {
    Params p(json{{"worker", nullptr}, {"value", 3}});
    REQUIRE(p.present("worker") != nullptr);
    CHECK(p.present("worker")->is_null());
    CHECK(*p.present("value") == 3);
    CHECK(p.present("missing") == nullptr);
}

TEST_CASE("required returns the converted value and names the path when it is missing or null",
          "[unit][params]") {
    Params p(json{{"n", 5}, {"s", "x"}, {"z", nullptr}});
    CHECK(p.required<int64_t>("n") == 5);
    CHECK(p.required<std::string>("s") == "x");
    CHECK(invalid_params_message([&] { (void)p.required<int>("missing"); }) == "params.missing: required");
    CHECK(invalid_params_message([&] { (void)p.required<int>("z"); }) == "params.z: required");
}

TEST_CASE("optional gives nullopt for a missing or null key and converts the rest", "[unit][params]") {
    Params p(json{{"n", 5}, {"z", nullptr}, {"s", "str"}});
    CHECK(p.optional<int>("n") == 5);
    CHECK_FALSE(p.optional<int>("z"));
    CHECK_FALSE(p.optional<int>("nope"));
    CHECK(invalid_params_message([&] { (void)p.optional<int>("s"); }) == "params.s: expected an integer");
}

TEST_CASE("get_or falls back for a missing or null key but not for a wrong type", "[unit][params]") {
    Params p(json{{"n", 5}, {"z", nullptr}, {"s", "str"}});
    CHECK(p.get_or<int>("n", 9) == 5);
    CHECK(p.get_or<int>("z", 9) == 9);
    CHECK(p.get_or<int>("nope", 9) == 9);
    CHECK(p.get_or<std::string>("nope", "dflt") == "dflt");
    CHECK_THROWS_AS(p.get_or<int>("s", 9), RequestError);
}

TEST_CASE("error messages use the path given to the Params", "[unit][params]") {
    Params p(json{{"timeout", "soon"}}, "params.tasks[3]");
    CHECK(invalid_params_message([&] { (void)p.required<double>("timeout"); }) ==
          "params.tasks[3].timeout: expected a number");
    CHECK(p.path() == "params.tasks[3]");
}

TEST_CASE("reject_unknown names the first unknown field", "[unit][params]") {
    Params p(json{{"argv", json::array({"ls"})}, {"tiemout", 3}});
    CHECK_NOTHROW(Params(json{{"a", 1}}).reject_unknown({"a", "b"}));
    CHECK_NOTHROW(Params(json::object()).reject_unknown({}));
    CHECK(invalid_params_message([&] {
              p.reject_unknown({"argv", "timeout"});
          }) == "params.tiemout: unknown field");
    CHECK_THROWS_AS(Params(json{{"a", 1}}).reject_unknown({}), RequestError);
}

TEST_CASE("reject_unknown also rejects unknown fields whose value is null", "[unit][params]") {
    Params p(json{{"known", 1}, {"other", nullptr}});
    CHECK(invalid_params_message([&] { p.reject_unknown({"known"}); }) == "params.other: unknown field");
}

TEST_CASE("bool accepts only true and false", "[unit][params]") {
    CHECK(convert<bool>(true) == true);
    CHECK(convert<bool>(false) == false);
    for (const json& v : {json(0), json(1), json("true"), json::array(), json::object()}) {
        CHECK(invalid_params_message([&] { (void)convert<bool>(v); }) == "params.x: expected true or false");
    }
}

TEST_CASE("int64 accepts the whole int64 range", "[unit][params]") {
    CHECK(convert<int64_t>(0) == 0);
    CHECK(convert<int64_t>(-7) == -7);
    CHECK(convert<int64_t>(std::numeric_limits<int64_t>::max()) == std::numeric_limits<int64_t>::max());
    CHECK(convert<int64_t>(std::numeric_limits<int64_t>::min()) == std::numeric_limits<int64_t>::min());
    CHECK(convert<int64_t>(json::parse("9223372036854775807")) == std::numeric_limits<int64_t>::max());
    CHECK(convert<int64_t>(json::parse("-9223372036854775808")) == std::numeric_limits<int64_t>::min());
}

TEST_CASE("int64 rejects unsigned values above the int64 range", "[unit][params]") {
    CHECK(invalid_params_message([] { (void)convert<int64_t>(json::parse("9223372036854775808")); }) ==
          "params.x: expected an integer in the int64 range");
    CHECK(invalid_params_message([] {
              (void)convert<int64_t>(json(std::numeric_limits<uint64_t>::max()));
          }) == "params.x: expected an integer in the int64 range");
}

TEST_CASE("int64 accepts floats that are integers and rejects the others", "[unit][params]") {
    CHECK(convert<int64_t>(3.0) == 3);
    CHECK(convert<int64_t>(-12.0) == -12);
    CHECK(convert<int64_t>(json::parse("1e3")) == 1000);
    CHECK(convert<int64_t>(json::parse("0.0")) == 0);
    // Beyond 2^53 too, as JSON Schema's "integer" counts them: 1e16 is exactly 10^16.
    CHECK(convert<int64_t>(json::parse("1e16")) == 10'000'000'000'000'000);
    CHECK(convert<int64_t>(json::parse("-4611686018427387904.0")) == -4'611'686'018'427'387'904);
    // 9223372036854775807.0 is read as 2^63, one past the int64 range.
    for (const json& v : {json(3.5), json(-0.25), json(1e300), json(-1e300),
                          json::parse("9223372036854775807.0"), json::parse("-9223372036854775809")}) {
        CHECK(invalid_params_message([&] { (void)convert<int64_t>(v); }) == "params.x: expected an integer");
    }
}

TEST_CASE("integer gives the int64 of any integral number and nullopt for the rest", "[unit][params]") {
    CHECK(Params::integer(json(18)) == 18);
    CHECK(Params::integer(json(18.0)) == 18);
    CHECK(Params::integer(json::parse("9223372036854775807")) == std::numeric_limits<int64_t>::max());
    for (const json& v : {json(18.5), json("18"), json(true), json(nullptr), json::array({18}),
                          json::parse("9223372036854775808"), json::parse("1e19")}) {
        INFO(v.dump());
        CHECK_FALSE(Params::integer(v));
    }
}

TEST_CASE("lengths are counted in characters, not bytes", "[unit][params]") {
    using mpctl::proto::count_characters;
    CHECK(count_characters("") == 0);
    CHECK(count_characters("abc") == 3);
    CHECK(count_characters("\xC3\xA9t\xC3\xA9") == 3);  // été: 5 bytes
    CHECK(count_characters("\xE2\x82\xAC") == 1);       // the euro sign: 3 bytes
    CHECK(count_characters("\xF0\x9F\x98\x80!") == 2);  // an emoji (4 bytes) and a '!'
    CHECK(count_characters(std::string("a\0b", 3)) == 3);
}

TEST_CASE("int64 rejects non-numbers", "[unit][params]") {
    for (const json& v : {json("5"), json(true), json(nullptr), json::array({1}), json::object()}) {
        CHECK(invalid_params_message([&] { (void)convert<int64_t>(v); }) == "params.x: expected an integer");
    }
}

TEST_CASE("int accepts the int32 range and rejects integers beyond it", "[unit][params]") {
    CHECK(convert<int>(std::numeric_limits<int>::max()) == std::numeric_limits<int>::max());
    CHECK(convert<int>(std::numeric_limits<int>::min()) == std::numeric_limits<int>::min());
    CHECK(convert<int>(json(2.0)) == 2);
    CHECK(invalid_params_message([] { (void)convert<int>(json(int64_t{1} << 31)); }) ==
          "params.x: expected an integer in the int32 range");
    CHECK(invalid_params_message([] { (void)convert<int>(json(-(int64_t{1} << 31) - 1)); }) ==
          "params.x: expected an integer in the int32 range");
    CHECK(invalid_params_message([] { (void)convert<int>(json(1.5)); }) == "params.x: expected an integer");
}

TEST_CASE("double accepts every JSON number and rejects the rest", "[unit][params]") {
    CHECK(convert<double>(1.5) == 1.5);
    CHECK(convert<double>(3) == 3.0);
    CHECK(convert<double>(-3) == -3.0);
    CHECK(convert<double>(json(uint64_t{10})) == 10.0);
    for (const json& v : {json("1.5"), json(true), json::array(), json::object()}) {
        CHECK(invalid_params_message([&] { (void)convert<double>(v); }) == "params.x: expected a number");
    }
}

TEST_CASE("double rejects infinities and NaN", "[unit][params]") {
    for (double d : {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()}) {
        CHECK(invalid_params_message([&] { (void)convert<double>(json(d)); }) ==
              "params.x: expected a finite number");
    }
}

TEST_CASE("string accepts strings, including UTF-8, and rejects other types", "[unit][params]") {
    CHECK(convert<std::string>("abc") == "abc");
    CHECK(convert<std::string>("") == "");
    CHECK(convert<std::string>("\xC3\xA9t\xC3\xA9") == "\xC3\xA9t\xC3\xA9");
    for (const json& v : {json(1), json(true), json(nullptr), json::array({"a"}), json::object()}) {
        CHECK(invalid_params_message([&] { (void)convert<std::string>(v); }) ==
              "params.x: expected a string");
    }
}

TEST_CASE("strings with NUL bytes are rejected", "[unit][params]") {
    std::string with_nul("ab\0cd", 5);
    CHECK(invalid_params_message([&] { (void)convert<std::string>(json(with_nul)); }) ==
          "params.x: must not contain NUL characters");
    CHECK(invalid_params_message([&] { (void)convert<std::string>(json(std::string(1, '\0'))); }) ==
          "params.x: must not contain NUL characters");
    // The same bytes arriving as JSON text with an escape.
    CHECK_THROWS_AS(convert<std::string>(json::parse(R"("a\u0000b")")), RequestError);
}

TEST_CASE("string arrays convert element by element and name the bad element", "[unit][params]") {
    CHECK(convert<std::vector<std::string>>(json::array({"a", "b"})) == std::vector<std::string>{"a", "b"});
    CHECK(convert<std::vector<std::string>>(json::array()).empty());
    CHECK(invalid_params_message([] {
              (void)convert<std::vector<std::string>>(json::array({"a", 2}));
          }) == "params.x[1]: expected a string");
    CHECK(invalid_params_message([] {
              (void)convert<std::vector<std::string>>(json::array({"a", "b", std::string("c\0", 2)}));
          }) == "params.x[2]: must not contain NUL characters");
    CHECK(invalid_params_message([] { (void)convert<std::vector<std::string>>(json("a")); }) ==
          "params.x: expected an array of strings");
    CHECK(invalid_params_message([] { (void)convert<std::vector<std::string>>(json::object()); }) ==
          "params.x: expected an array of strings");
}

TEST_CASE("integer arrays convert element by element and name the bad element", "[unit][params]") {
    CHECK(convert<std::vector<int64_t>>(json::array({1, 2.0, -3})) == std::vector<int64_t>{1, 2, -3});
    CHECK(invalid_params_message([] {
              (void)convert<std::vector<int64_t>>(json::array({1, 2, 3.5}));
          }) == "params.x[2]: expected an integer");
    CHECK(invalid_params_message([] { (void)convert<std::vector<int64_t>>(json::array({"1"})); }) ==
          "params.x[0]: expected an integer");
    CHECK(invalid_params_message([] { (void)convert<std::vector<int64_t>>(json(1)); }) ==
          "params.x: expected an array of integers");
}

TEST_CASE("string maps convert every value and name the bad key", "[unit][params]") {
    using Map = std::map<std::string, std::string>;
    CHECK(convert<Map>(json{{"A", "1"}, {"B", ""}}) == Map{{"A", "1"}, {"B", ""}});
    CHECK(convert<Map>(json::object()).empty());
    CHECK(invalid_params_message([] {
              (void)convert<Map>(json{{"A", "1"}, {"B", 2}});
          }) == "params.x.B: expected a string");
    CHECK(invalid_params_message([] {
              (void)convert<Map>(json{{"A", nullptr}});
          }) == "params.x.A: expected a string");
    CHECK(invalid_params_message([] { (void)convert<Map>(json::array()); }) ==
          "params.x: expected an object of strings");
    CHECK(invalid_params_message([] { (void)convert<Map>(json("A=1")); }) ==
          "params.x: expected an object of strings");
}

TEST_CASE("string maps reject NUL bytes in keys and in values", "[unit][params]") {
    using Map = std::map<std::string, std::string>;
    json bad_value = json::object();
    bad_value["K"] = std::string("v\0w", 3);
    CHECK(invalid_params_message([&] { (void)convert<Map>(bad_value); }) ==
          "params.x.K: must not contain NUL characters");
    json bad_key = json::object();
    bad_key[std::string("K\0L", 3)] = "v";
    CHECK_THROWS_AS(convert<Map>(bad_key), RequestError);
}

TEST_CASE("json conversion passes any value through", "[unit][params]") {
    json v = {{"nested", json::array({1, "two", nullptr})}};
    CHECK(convert<json>(v) == v);
    Params p(json{{"any", v}});
    CHECK(p.required<json>("any") == v);
}

TEST_CASE("the raw object is the params object as given", "[unit][params]") {
    json v = {{"a", 1}, {"b", json::array()}};
    CHECK(Params(v).raw() == v);
}
