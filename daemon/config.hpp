#pragma once
// DaemonConfig: every setting of mpctld, from defaults, then the config file (TOML), then flags.
//
//   # mpctld.toml
//   workers = 8                 # size of the default pool
//   log_level = "info"          # trace, debug, info, warn, error
//   durability = "normal"       # normal: survive daemon crashes; full: also power loss (fsync)
//   kill_after = 5              # grace between SIGTERM and SIGKILL at `daemon stop --now`
//   max_output = 1073741824     # bytes of each output stream kept per task (a task's --max-output wins)
//   max_connections = 4096      # clients served at once; more are told "busy" and disconnected
//   keep_finished = "7d"        # finished tasks older than this are forgotten (rows and output files)
//   keep_finished_max = 10000   # and past this many finished tasks, the oldest are
//   shm_max_size = 17179869184  # bytes: the largest shared-memory segment `mpctl shm create` makes
//   manager_max_bytes = 1073741824  # bytes of queue and dict values the daemon holds, all together
//   listen = "tcp://0.0.0.0:7433"   # also serve remote clients there, over TLS 1.3 (or an array)
//   [pools.gpu]
//   workers = 1
// The socket and state dir are not file settings: mpctl must find them without reading this file.
// SIGHUP reads the file again and applies what can change while serving: workers, [pools.NAME] workers and
// log_level (Daemon::reload); the other settings take effect at the next start.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/store/durability.hpp>

namespace mpctl::daemon {

// What the config file said of the settings a reload (SIGHUP) applies: the file alone, before any flag.
struct ReloadableSettings {
    int workers = 0;  // 0: not in the file
    std::string log_level = "info";
    std::map<std::string, int> pools;
    friend bool operator==(const ReloadableSettings&, const ReloadableSettings&) = default;
};

struct DaemonConfig {
    std::string socket_path;
    std::string state_dir;
    std::string config_path;
    int workers = 0;  // 0: the number of CPUs
    std::string log_level = "info";
    Durability durability = Durability::normal;
    double kill_after_s = 5.0;
    uint64_t max_output = uint64_t{1} << 30;
    size_t max_connections = 4096;
    std::optional<double> keep_finished_s;    // nullopt: kept until removed
    std::optional<size_t> keep_finished_max;  // nullopt: no limit
    uint64_t shm_max_size = uint64_t{16} << 30;
    uint64_t manager_max_bytes = uint64_t{1} << 30;
    std::vector<std::string> listen;  // tcp://HOST:PORT for remote clients over TLS; none by default
    std::map<std::string, int> pools;
    bool foreground = false;
    bool exit_with_parent = false;  // for test harnesses: die when whoever started us dies
    ReloadableSettings from_file;   // set by load_config_file
    bool config_required = false;   // --config named the file: a reload that cannot read it fails
    bool workers_flag = false;      // --workers given: it wins over the file, at reloads too
    bool log_level_flag = false;    // --log-level given: likewise
};

// The log levels a config file and --log-level take.
[[nodiscard]] bool valid_log_level(const std::string& level);

// Applies the TOML file at PATH to CONFIG. A missing file is fine unless REQUIRED.
[[nodiscard]] common::Result<void> load_config_file(const std::string& path, bool required,
                                                    DaemonConfig& config);

[[nodiscard]] std::optional<Durability> parse_durability(const std::string& text);
[[nodiscard]] const char* to_string(Durability d);

}  // namespace mpctl::daemon
