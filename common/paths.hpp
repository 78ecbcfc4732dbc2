#pragma once
// Where mpctl keeps its socket, state and configuration, following the precedence of README.md's "Where
// things live":
//   socket:    --socket > $MPCTL_SOCKET > $XDG_RUNTIME_DIR/mpctl/mpctld.sock > /tmp/mpctl-$UID/mpctld.sock
//   state dir: --state-dir > $MPCTL_STATE_DIR > $XDG_STATE_HOME/mpctl > ~/.local/state/mpctl
//   config:    --config > $XDG_CONFIG_HOME/mpctl/mpctld.toml > ~/.config/mpctl/mpctld.toml
// For root these are the system paths (/run/mpctl, /var/lib/mpctl, /etc/mpctl) unless overridden.

#include <string>

#include <mpctl/common/result.hpp>

namespace mpctl::common {

[[nodiscard]] std::string default_socket_path();
[[nodiscard]] std::string default_state_dir();
[[nodiscard]] std::string default_config_path();

// The flag if given, else the default.
[[nodiscard]] std::string resolve_socket_path(const std::string& flag);
[[nodiscard]] std::string resolve_state_dir(const std::string& flag);

// Makes PATH absolute against BASE (or the current directory when BASE is empty); no symlink resolution.
[[nodiscard]] std::string absolute_path(const std::string& path, const std::string& base = {});

[[nodiscard]] std::string parent_dir(const std::string& path);

// Creates DIR and its missing parents; the last component gets MODE.
[[nodiscard]] Result<void> make_dirs(const std::string& dir, unsigned mode);

// The directory holding the running executable (from /proc/self/exe), or "" if unknown.
[[nodiscard]] std::string executable_dir();

}  // namespace mpctl::common
