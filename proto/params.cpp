#include <cmath>
#include <limits>

#include <mpctl/proto/params.hpp>

namespace mpctl::proto {

namespace {

[[noreturn]] void type_error(const std::string& path, const char* expected) {
    throw_invalid_params(path + ": expected " + expected);
}

// Strings reach argv, paths and environment blocks, where a NUL would silently truncate them.
void check_no_nul(const std::string& s, const std::string& path) {
    if (s.find('\0') != std::string::npos) {
        throw_invalid_params(path + ": must not contain NUL characters");
    }
}

}  // namespace

size_t count_characters(std::string_view s) noexcept {
    size_t n = 0;
    for (unsigned char c : s) {
        n += (c & 0xC0) != 0x80 ? 1 : 0;  // every byte but a continuation byte starts a code point
    }
    return n;
}

Params::Params(const nlohmann::json& value, std::string path) : object_(&value), path_(std::move(path)) {
    if (value.is_null()) {
        owned_ = nlohmann::json::object();
        object_ = &owned_;
    } else if (!value.is_object()) {
        type_error(path_, "an object");
    }
}

Params::Params(nlohmann::json&& value, std::string path)
    : owned_(std::move(value)), object_(&owned_), path_(std::move(path)) {
    if (owned_.is_null()) {
        owned_ = nlohmann::json::object();
    } else if (!owned_.is_object()) {
        type_error(path_, "an object");
    }
}

bool Params::has(const char* key) const {
    auto it = object_->find(key);
    return it != object_->end() && !it->is_null();
}

const nlohmann::json* Params::present(const char* key) const {
    auto it = object_->find(key);
    return it == object_->end() ? nullptr : &*it;
}

void Params::reject_unknown(std::initializer_list<const char*> allowed) const {
    for (const auto& [key, value] : object_->items()) {
        bool known = false;
        for (const char* a : allowed) {
            if (key == a) {
                known = true;
                break;
            }
        }
        if (!known) {
            throw_invalid_params(path_ + "." + key + ": unknown field");
        }
    }
}

template <>
bool Params::convert<bool>(const nlohmann::json& v, const std::string& path) {
    if (!v.is_boolean()) {
        type_error(path, "true or false");
    }
    return v.get<bool>();
}

std::optional<int64_t> Params::integer(const nlohmann::json& v) noexcept {
    if (v.is_number_unsigned()) {
        uint64_t u = v.get<uint64_t>();
        return u > static_cast<uint64_t>(INT64_MAX) ? std::nullopt
                                                    : std::optional<int64_t>(static_cast<int64_t>(u));
    }
    if (v.is_number_integer()) {
        return v.get<int64_t>();
    }
    // JSON has numbers, not integers and floats: 1.0 is the integer 1 (as JSON Schema's "integer" says), so a
    // client whose JSON library writes every number with a point is not refused. -2^63 itself is left out:
    // a float that rounds to it may have been a smaller integer in the text.
    if (v.is_number_float()) {
        constexpr double k_two_63 = 9223372036854775808.0;
        double d = v.get<double>();
        if (std::isfinite(d) && d == std::floor(d) && d > -k_two_63 && d < k_two_63) {
            return static_cast<int64_t>(d);
        }
    }
    return std::nullopt;
}

template <>
int64_t Params::convert<int64_t>(const nlohmann::json& v, const std::string& path) {
    if (auto n = integer(v)) {
        return *n;
    }
    if (v.is_number_unsigned()) {
        type_error(path, "an integer in the int64 range");
    }
    type_error(path, "an integer");
}

template <>
int Params::convert<int>(const nlohmann::json& v, const std::string& path) {
    int64_t n = convert<int64_t>(v, path);
    if (n < std::numeric_limits<int>::min() || n > std::numeric_limits<int>::max()) {
        type_error(path, "an integer in the int32 range");
    }
    return static_cast<int>(n);
}

template <>
double Params::convert<double>(const nlohmann::json& v, const std::string& path) {
    if (!v.is_number()) {
        type_error(path, "a number");
    }
    double d = v.get<double>();
    if (!std::isfinite(d)) {
        type_error(path, "a finite number");
    }
    return d;
}

template <>
std::string Params::convert<std::string>(const nlohmann::json& v, const std::string& path) {
    if (!v.is_string()) {
        type_error(path, "a string");
    }
    std::string s = v.get<std::string>();
    check_no_nul(s, path);
    return s;
}

template <>
std::vector<std::string> Params::convert<std::vector<std::string>>(const nlohmann::json& v,
                                                                   const std::string& path) {
    if (!v.is_array()) {
        type_error(path, "an array of strings");
    }
    std::vector<std::string> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        out.push_back(convert<std::string>(v[i], path + "[" + std::to_string(i) + "]"));
    }
    return out;
}

template <>
std::vector<int64_t> Params::convert<std::vector<int64_t>>(const nlohmann::json& v, const std::string& path) {
    if (!v.is_array()) {
        type_error(path, "an array of integers");
    }
    std::vector<int64_t> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        out.push_back(convert<int64_t>(v[i], path + "[" + std::to_string(i) + "]"));
    }
    return out;
}

template <>
std::map<std::string, std::string> Params::convert<std::map<std::string, std::string>>(
    const nlohmann::json& v, const std::string& path) {
    if (!v.is_object()) {
        type_error(path, "an object of strings");
    }
    std::map<std::string, std::string> out;
    for (const auto& [key, value] : v.items()) {
        check_no_nul(key, path);
        out.emplace(key, convert<std::string>(value, path + "." + key));
    }
    return out;
}

template <>
nlohmann::json Params::convert<nlohmann::json>(const nlohmann::json& v, const std::string&) {
    return v;
}

}  // namespace mpctl::proto
