#pragma once
// DaemonConfig: every setting of mpctld, from defaults, then the config file (TOML), then flags.
//
//   # mpctld.toml
//   workers = 8                 # size of the default pool
//   log_level = "info"          # trace, debug, info, warn, error
//   log_max_size = "10M"        # a daemonized mpctld's STATE_DIR/mpctld.log is rotated past this (0: never)
//   log_keep = 3                # and mpctld.log.1 .. mpctld.log.3 are kept
//   durability = "normal"       # normal: survive daemon crashes; full: also power loss (fsync)
//   kill_after = 5              # grace between SIGTERM and SIGKILL at `daemon stop --now`
//   max_output = 1073741824     # bytes of each output stream kept per task (a task's --max-output wins)
//   max_connections = 4096      # clients served at once; more are told "busy" and disconnected
//   keep_finished = "7d"        # finished tasks older than this are forgotten (rows and output files)
//   keep_finished_max = 10000   # and past this many finished tasks, the oldest are
//   shm_max_size = 17179869184  # bytes: the largest shared-memory segment `mpctl shm create` makes
//   manager_max_bytes = 1073741824  # bytes of queue and dict values the daemon holds, all together
//   listen = "tcp://0.0.0.0:7433"   # also serve remote clients there, over TLS 1.3 (or an array)
//   socket = "/srv/mpctl/mpctld.sock"   # absolute paths; --socket / --state-dir and then
//   state_dir = "/srv/mpctl/state"      # $MPCTL_SOCKET / $MPCTL_STATE_DIR win over these
//   group = "mpctl"             # run as root, also serve this group's members (server/group_access.hpp)
//   supervise = false           # default: true when daemonized, false in the foreground
//   [pools.gpu]
//   workers = 1
//   [pools.hpc]                 # a pool whose tasks are Slurm jobs (slurm/slurm_spawner.hpp)
//   workers = 100
//   backend = "slurm"           # or "local"; then, for a Slurm pool only:
//   partition = "debug"         # account = "..."
//   slurm_args = ["--qos=low"]
//   slurm_shared_check = "srun --time=1 test -d"   # top level: see slurm_shared_check below
// Every flag of mpctld that is a setting has its key here; the others are not settings: --config names
// the file, and --foreground, --recover, --check-config, --print-fingerprint, --exit-with-parent,
// --help-man and --version say what this run does. mpctl never reads this file: with `socket` set here,
// mpctl finds the daemon only when $MPCTL_SOCKET (or its --socket) says the same path.
// An error names the file, the line and the key; `mpctld --check-config FILE` checks a file alone.
// SIGHUP reads the file again and applies what can change while serving: workers, [pools.NAME] workers and
// log_level (Daemon::reload); the other settings (a pool's backend among them) take effect at the next start.

#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/daemon/slurm/job_files.hpp>
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
    uint64_t log_max_size = uint64_t{10} << 20;  // 0: the log file is never rotated
    int log_keep = 3;                            // rotated log files kept: mpctld.log.1 .. .N
    Durability durability = Durability::normal;
    double kill_after_s = 5.0;
    uint64_t max_output = uint64_t{1} << 30;
    size_t max_connections = 4096;
    std::optional<double> keep_finished_s;    // nullopt: kept until removed
    std::optional<size_t> keep_finished_max;  // nullopt: no limit
    uint64_t shm_max_size = uint64_t{16} << 30;
    uint64_t manager_max_bytes = uint64_t{1} << 30;
    std::string group = "mpctl";      // a root daemon also serves its members
    std::vector<std::string> listen;  // tcp://HOST:PORT for remote clients over TLS; none by default
    std::map<std::string, int> pools;
    // [pools.NAME] backend = "slurm" (and partition, account, slurm_args): read at start; what `mpctl pool
    // set` gave a pool wins over the file, as its workers do.
    std::map<std::string, slurm::PoolSettings> pool_backends;
    // A shell command that says (exit 0) whether the state dir, given as "$1", is on a file system the
    // Slurm nodes share; run before a Slurm pool's first job (SlurmSpawner). Empty: not checked.
    std::string slurm_shared_check;
    // Run under a supervising parent (service/supervisor.hpp). Unset: a daemon that detaches itself is
    // supervised, one in the foreground (a terminal, a service manager, a test harness watches it) is not.
    std::optional<bool> supervise;
    bool foreground = false;
    bool exit_with_parent = false;  // for test harnesses: die when whoever started us dies
    ReloadableSettings from_file;   // set by load_config_file
    bool config_required = false;   // --config named the file: a reload that cannot read it fails
    bool workers_flag = false;      // --workers given: it wins over the file, at reloads too
    bool log_level_flag = false;    // --log-level given: likewise
    // Set in a supervised daemon: its supervisor's pid (0: unsupervised) and the daemons it started before.
    pid_t supervisor_pid = 0;
    int restarts = 0;
    int supervisor_link = -1;  // Supervised::link, which an upgrade hands over
};

// The log levels a config file and --log-level take.
[[nodiscard]] bool valid_log_level(const std::string& level);

// The smallest log_max_size but 0: below it a burst of lines would rotate the files away line by line.
inline constexpr uint64_t k_min_log_max_size = 1024;
inline constexpr int k_max_log_keep = 1000;

// Applies the TOML file at PATH to CONFIG. A missing file is fine unless REQUIRED. An error reads
// "config file PATH, line N: KEY must be ..." (socket and state_dir, when set, land in CONFIG's
// socket_path and state_dir: main lets the flags and the environment win over them).
[[nodiscard]] common::Result<void> load_config_file(const std::string& path, bool required,
                                                    DaemonConfig& config);

[[nodiscard]] std::optional<Durability> parse_durability(const std::string& text);
[[nodiscard]] const char* to_string(Durability d);

}  // namespace mpctl::daemon
