#pragma once
// mpctld(8) in roff (`mpctld --help-man`): the flags from mpctld's own CLI11 app, the rest (signals, the
// config file, files, environment, exit status) written in man_page.cpp.

#include <string>

#include <CLI/CLI.hpp>

namespace mpctl::daemon {

[[nodiscard]] std::string man_page(const CLI::App& app);

}  // namespace mpctl::daemon
