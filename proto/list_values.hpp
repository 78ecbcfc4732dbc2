#pragma once
// ShareableList items (common/shareable_list.hpp) as JSON, the same way in params, answers and `mpctl`'s
// output: integers (int64), other numbers (float), true/false, null, strings (UTF-8), and bytes as
// {"base64": "..."}.

#include <string>

#include <nlohmann/json.hpp>

#include <mpctl/common/result.hpp>
#include <mpctl/common/shareable_list.hpp>

namespace mpctl::proto {

// VALUE as an item; Errc::invalid saying why not (an array, an object other than {"base64": ...}, an
// integer past int64, a string that is not UTF-8).
[[nodiscard]] common::Result<common::shm::ListValue> list_value_from_json(const nlohmann::json& value);
[[nodiscard]] nlohmann::json list_value_to_json(const common::shm::ListValue& value);

// A VALUE of the command line: JSON if it reads as JSON, else the text itself as a string.
[[nodiscard]] common::Result<common::shm::ListValue> list_value_from_word(const std::string& word);

}  // namespace mpctl::proto
