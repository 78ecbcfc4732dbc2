#include <mpctl/common/roff.hpp>
#include <mpctl/common/roff_cli11.hpp>
#include <mpctl/daemon/man_page.hpp>

namespace mpctl::daemon {

namespace {

constexpr std::string_view k_man_description = R"(
.PP
`mpctld` runs the tasks that mpctl(1) submits, in worker pools, and holds what its clients share: file
locks, semaphores, events, barriers, shared-memory segments, queues and dicts.
Clients speak JSON-RPC 2.0 over a Unix socket, one message per line; `mpctl` starts a per-user `mpctld`
by itself when none answers.
.PP
`mpctld --foreground` logs to stderr; `mpctld` alone daemonizes, logging to STATE_DIR/mpctld.log (rotated
past `log_max_size`), unless systemd started it (then it reports readiness with sd_notify, and its lines on
the journal carry sd-daemon(3) priority prefixes instead of timestamps).
Only one daemon serves a state directory: a second one exits with status 3.
.PP
A submit is answered only after its row is committed to the journal (SQLite, WAL), so nothing acknowledged
is lost if the daemon is killed. On start, pending tasks resume; tasks that were running when the daemon
died become failed with reason lost.
Settings come from the defaults, then the config file, then the flags.
`mpctld --check-config FILE` checks a config file and starts nothing.
)";

constexpr std::string_view k_man_rest = R"(
.SH "CONFIGURATION FILE"
The config file is TOML; every key is optional.
.TP
workers = 8
Size of the default pool (default: the number of CPUs).
.TP
log_level = "info"
trace, debug, info, warn or error.
.TP
log_max_size = "10M"
Daemonized, STATE_DIR/mpctld.log is renamed mpctld.log.1 before a line would take it past this size, and a
fresh one is opened (bytes, or 64K, 10M; at least 1K; 0: never rotated).
.TP
log_keep = 3
Rotated logs kept: mpctld.log.1 (the newest) to mpctld.log.N; the oldest past N is removed.
.TP
durability = "normal"
normal: commits survive daemon crashes; full: also power loss (fsync).
.TP
kill_after = 5
Seconds between SIGTERM and SIGKILL at `mpctl daemon stop --now`.
.TP
max_output = 1073741824
Bytes of each output stream kept per task (a task's `--max-output` wins).
.TP
max_connections = 4096
Clients served at once; more are told busy and disconnected.
.TP
keep_finished = "7d"
Finished tasks older than this are forgotten, rows and output files (default: kept until removed).
.TP
keep_finished_max = 10000
Past this many finished tasks, the oldest are forgotten (default: no limit).
.TP
shm_max_size = 17179869184
Bytes: the largest shared-memory segment `mpctl shm create` makes.
.TP
manager_max_bytes = 1073741824
Bytes of queue and dict values the daemon holds, all together.
.TP
listen = "tcp://0.0.0.0:7433"
Also serve remote clients there, over TLS 1.3 (a string or an array; default: never).
.TP
socket = "/srv/mpctl/mpctld.sock"
The socket to serve, an absolute path (`--socket` and MPCTL_SOCKET win).
mpctl(1) never reads this file: it finds such a daemon only with MPCTL_SOCKET (or its `--socket`) set to
the same path.
.TP
state_dir = "/srv/mpctl/state"
The state directory, an absolute path (`--state-dir` and MPCTL_STATE_DIR win).
.TP
group = "mpctl"
Run as root, also serve the members of this group (by the connecting process's gid or supplementary
groups, as the kernel judges a file's group; default: mpctl, where it exists).
.TP
supervise = true
Run under a supervising parent that restarts a daemon that crashed and records the exit status of tasks
that end while it is down, for the daemon that comes back to re-adopt them (default: true for a daemon
that detaches itself, false with `--foreground`; `--supervise`, `--no-supervise`).
.TP
[pools.NAME] workers = N
The size of pool NAME.
.TP
[pools.NAME] backend = "slurm"
Pool NAME hands its tasks to Slurm, with `partition`, `account` and `slurm_args` (an array of sbatch
options) as `mpctl pool set NAME --backend slurm` takes them; `"local"` runs them here. Read at start:
what `mpctl pool set` gave the pool since wins.
.TP
slurm_shared_check = "srun --time=1 test -d"
A shell command, given the state dir as its last argument, that must succeed before a Slurm pool's first
job: the state dir must be on a file system the nodes share (default: not checked).
.PP
Each flag that is a setting has its key; `--config`, `--foreground`, `--recover`, `--check-config`,
`--print-fingerprint` say what a run does and are not settings.
An unknown key, a value of the wrong kind and a file that is not TOML stop the start (exit status 2) with
a message that names the file, the line and the key.
.SH SIGNALS
.TP
SIGTERM, SIGINT
Stop as `mpctl daemon stop --now`: running tasks get SIGTERM (to each process group), SIGKILL after
`kill_after`, and are recorded as cancelled; pending ones stay queued for the next start.
.TP
SIGHUP
Read the config file again and apply what changed in `workers`, `[pools.NAME]` sizes and `log_level`
(a flag still wins over the file); other keys take effect at the next start.
.PP
A supervised daemon's signals go to its supervising parent (the pid in STATE_DIR/mpctld.lock), which
forwards them to the daemon and exits with it.
.SH "EXIT STATUS"
.TP
0
stopped cleanly
.TP
1
start-up failed (a damaged journal too: see `--recover`)
.TP
2
usage error (bad flags, a bad config file, also at `--check-config`)
.TP
3
another mpctld holds the state directory or the socket
.SH ENVIRONMENT
.TP
MPCTL_SOCKET
The socket to serve, when `--socket` is not given (it wins over `socket` in the config file).
.TP
MPCTL_STATE_DIR
The state directory, when `--state-dir` is not given (it wins over `state_dir` in the config file).
.TP
XDG_RUNTIME_DIR, XDG_STATE_HOME, XDG_CONFIG_HOME
Where the default socket, state directory and config file are.
.TP
NOTIFY_SOCKET
Set by systemd: readiness is reported there with sd_notify.
.TP
JOURNAL_STREAM
Set by systemd when stderr is the journal: where it names stderr, log lines carry priority prefixes
(<3> error, <4> warn, <6> info, <7> debug and trace) and no timestamps.
.SH FILES
.TP
$XDG_RUNTIME_DIR/mpctl/mpctld.sock
The socket (without XDG_RUNTIME_DIR: /tmp/mpctl-$UID/mpctld.sock; the system service:
/run/mpctl/mpctld.sock).
.TP
$XDG_STATE_HOME/mpctl/
The state directory (default ~/.local/state/mpctl; the system service: /var/lib/mpctl).
.TP
STATE_DIR/mpctld.db
The journal of tasks, pools, environments, segments, queues and dicts (SQLite, with -wal and -shm). While
mpctld runs it is the daemon's alone: other programs (sqlite3) find it locked.
.TP
STATE_DIR/mpctld.lock
Held exclusively while a daemon serves the state directory.
.TP
STATE_DIR/mpctld.log, STATE_DIR/mpctld.log.1 ...
The log of a daemonized mpctld, and the rotated ones (`log_max_size`, `log_keep`).
.TP
STATE_DIR/tls/cert.pem, STATE_DIR/tls/key.pem
The certificate remote clients pin, and its key (made on first use).
.TP
$XDG_CONFIG_HOME/mpctl/mpctld.toml
The config file (default ~/.config/mpctl/mpctld.toml; the system service: /etc/mpctl/mpctld.toml).
.SH EXAMPLES
.PP
.RS
.nf
mpctld --foreground --workers 4 --log-level debug
mpctld --recover
mpctld --check-config /etc/mpctl/mpctld.toml
mpctld --listen tcp://0.0.0.0:7433
mpctld --print-fingerprint
.fi
.RE
.SH "SEE ALSO"
mpctl(1), systemd.service(5), sqlite3(1)
)";

}  // namespace

std::string man_page(const CLI::App& app) {
    namespace roff = common::roff;
    std::string description = app.get_description();
    if (description.starts_with(app.get_name() + ": ")) {
        description.erase(0, app.get_name().size() + 2);
    }
    std::string out = roff::title("MPCTLD", "8", "mpctl " MPCTL_VERSION, "System Manager's Manual");
    out += roff::section("NAME");
    out += roff::escape(app.get_name()) + " \\- " + roff::escape(description) + "\n";
    out += roff::section("SYNOPSIS");
    out += roff::usage(app);
    out += roff::section("DESCRIPTION");
    out += roff::render(k_man_description);
    out += roff::section("OPTIONS");
    out += roff::options(app, {}, true);
    out += roff::render(k_man_rest);
    return out;
}

}  // namespace mpctl::daemon
