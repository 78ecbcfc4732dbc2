#pragma once
// Environment files (--env-file): one KEY=VALUE per line, as systemd's EnvironmentFile= and docker's
// --env-file take them. Blank lines and lines starting with '#' are skipped; an "export " prefix is
// allowed; a value wrapped in matching single or double quotes loses them (inside double quotes \" \\ \n
// are unescaped); nothing is expanded ($HOME stays "$HOME").

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <mpctl/common/result.hpp>

namespace mpctl::common {

using EnvEntries = std::vector<std::pair<std::string, std::string>>;

// The entries of TEXT in order; an error (Errc::invalid) names the line ("line 3: expected KEY=VALUE").
[[nodiscard]] Result<EnvEntries> parse_env_file(std::string_view text);

}  // namespace mpctl::common
