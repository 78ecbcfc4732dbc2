#pragma once
// Params: typed, validating access to a request's params object. Every mismatch throws
// RequestError(invalid_params) with the offending path ("params.timeout: expected a number"), so handlers
// read what they need in one line and bad input never reaches them.
//
// The protocol's rules for every member (PROTOCOL.md, "Params", and proto/schemas/params.schema.json say
// the same): a member whose value is null is absent, so a required one is missing and an optional one takes
// its default; integers are JSON numbers without a fraction (1.0 is 1); strings never hold NUL; lengths
// are counted in characters (Unicode code points), not bytes.

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <mpctl/proto/errors.hpp>

namespace mpctl::proto {

class Params {
  public:
    // Throws invalid_params unless VALUE is an object (null counts as an empty object). A Params reads
    // VALUE where it is (no copy: a task spec carries a whole environment), so VALUE must outlive it; a
    // temporary is moved in and kept.
    explicit Params(const nlohmann::json& value, std::string path = "params");
    explicit Params(nlohmann::json&& value, std::string path = "params");
    Params(const Params&) = delete;
    Params& operator=(const Params&) = delete;

    [[nodiscard]] bool has(const char* key) const;
    // KEY's value even when it is null, or nullptr when KEY is absent: for the few members where null is a
    // value, not an absence (shm.list_set's value, the item None; pool.set's worker, a cold pool).
    [[nodiscard]] const nlohmann::json* present(const char* key) const;

    template <class T>
    [[nodiscard]] T required(const char* key) const {
        auto it = object_->find(key);
        if (it == object_->end() || it->is_null()) {
            throw_invalid_params(path_ + "." + key + ": required");
        }
        return convert<T>(*it, path_ + "." + key);
    }

    template <class T>
    [[nodiscard]] std::optional<T> optional(const char* key) const {
        auto it = object_->find(key);
        if (it == object_->end() || it->is_null()) {
            return std::nullopt;
        }
        return convert<T>(*it, path_ + "." + key);
    }

    template <class T>
    [[nodiscard]] T get_or(const char* key, T fallback) const {
        auto v = optional<T>(key);
        return v ? std::move(*v) : std::move(fallback);
    }

    // Throws invalid_params naming the first key not in ALLOWED (typos must not pass silently).
    void reject_unknown(std::initializer_list<const char*> allowed) const;

    [[nodiscard]] const nlohmann::json& raw() const noexcept { return *object_; }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

    template <class T>
    static T convert(const nlohmann::json& v, const std::string& path);
    // V as an int64 if it is an integer in that range (1.0 counts), else nullopt: for fields that take an
    // integer or something else (a umask's octal string, a signal's name).
    [[nodiscard]] static std::optional<int64_t> integer(const nlohmann::json& v) noexcept;

  private:
    nlohmann::json owned_;                    // a temporary's value, or the empty object for null
    const nlohmann::json* object_ = nullptr;  // what is read: owned_ or the caller's value
    std::string path_;
};

// Unicode code points in S, which is UTF-8 (the JSON parser has checked it): how JSON Schema's maxLength
// counts, so a name of 256 accented letters is 256 long, not 512.
[[nodiscard]] size_t count_characters(std::string_view s) noexcept;

template <>
bool Params::convert<bool>(const nlohmann::json& v, const std::string& path);
template <>
int64_t Params::convert<int64_t>(const nlohmann::json& v, const std::string& path);
template <>
int Params::convert<int>(const nlohmann::json& v, const std::string& path);
template <>
double Params::convert<double>(const nlohmann::json& v, const std::string& path);
template <>
std::string Params::convert<std::string>(const nlohmann::json& v, const std::string& path);
template <>
std::vector<std::string> Params::convert<std::vector<std::string>>(const nlohmann::json& v,
                                                                   const std::string& path);
template <>
std::vector<int64_t> Params::convert<std::vector<int64_t>>(const nlohmann::json& v, const std::string& path);
template <>
std::map<std::string, std::string> Params::convert<std::map<std::string, std::string>>(
    const nlohmann::json& v, const std::string& path);
template <>
nlohmann::json Params::convert<nlohmann::json>(const nlohmann::json& v, const std::string& path);

}  // namespace mpctl::proto
