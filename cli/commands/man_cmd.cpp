// mpctl __man: prints mpctl(1) in roff. The commands, their usage, options and help come from the CLI11 app
// itself, every command group built; what the app cannot say (exit status, environment, files, examples) is
// written here, in roff.hpp's markup. Hidden: the build runs it to make build/man/mpctl.1.

#include <cstdio>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/common/roff.hpp>
#include <mpctl/common/roff_cli11.hpp>

namespace mpctl::cli {

namespace {

constexpr std::string_view k_man_description = R"(
.PP
`mpctl` hands commands to `mpctld`, a per-user daemon that runs them in worker pools.
Every submission is a future: `mpctl submit` prints the task's id at once, and every other command takes it
(`status`, `wait`, `result`, `logs`, `cancel`, `kill`...).
Besides tasks the daemon holds file locks that flock(1) sees, semaphores, events, barriers, POSIX
shared-memory segments that Python's SharedMemory attaches to, and durable queues and dicts.
.PP
If no daemon answers on the socket, `mpctl` starts one (`mpctld`, from the same directory or the PATH) and
waits until it is ready, unless `--no-autostart` or MPCTL_NO_AUTOSTART=1.
With `--connect`, it talks to a remote `mpctld --listen` over TLS 1.3 instead.
.PP
A task runs like the command would in the submitting shell: in its current directory, with its environment,
umask and niceness, captured at submit time; without a shell unless `--shell`.
Durations take units: 250ms, 30s, 5m, 2h.
.PP
`--json` on any command prints JSON: one object, or one per line for several and for streams.
Errors go to stderr as "mpctl: MESSAGE" (and with `--json` also as {"error": ...} on stdout).
The global options below are taken before or after the command's name.
)";

constexpr std::string_view k_man_rest = R"(
.SH "EXIT STATUS"
`run`, `result`, `wait` and `lock run` pass the task's (or command's) outcome through, as timeout(1) does:
.TP
0
every task succeeded
.TP
1..123
the task's own exit code
.TP
124
a `--timeout` expired (the task's or the wait's)
.TP
125
the task was cancelled, or failed with reason lost or dependency, or mpctl itself failed
.TP
126
the command could not be executed (or its `--cwd` is unusable)
.TP
127
the command was not found
.TP
128+N
the task died of signal N
.PP
`wait` on several tasks exits with the code of the first unsuccessful one in argument order.
Every other command:
.TP
0
success
.TP
1
any other failure (the message says why)
.TP
2
usage error (bad flags, bad arguments)
.TP
3
no daemon reachable, and none could be started
.TP
4
unknown id or name (or owner process, or a lock not held)
.TP
5
resource busy: a non-blocking lock or semaphore could not be taken, a full queue, a `kv cas` mismatch
.TP
6
the daemon refused the request (protocol or permission error; the message says why)
.TP
124
a `--timeout` expired
.SH ENVIRONMENT
.TP
MPCTL_SOCKET
The daemon's socket, when `--socket` is not given.
.TP
MPCTL_STATE_DIR
The state directory of an autostarted daemon, when `--state-dir` is not given.
.TP
MPCTL_NO_AUTOSTART
If 1, never start a daemon (as `--no-autostart`).
.TP
MPCTL_CONNECT
A remote daemon, tcp://HOST:PORT, when `--connect` is not given.
.TP
MPCTL_FINGERPRINT
The remote daemon's pinned certificate, SHA256:HEX, when `--fingerprint` is not given.
.TP
MPCTL_TOKEN
The token for a remote daemon (see `mpctl token create`); tasks never get it.
.TP
XDG_RUNTIME_DIR, XDG_STATE_HOME
Where the default socket and state directory are.
.TP
NO_COLOR
If set, no colors, even on a terminal.
.SH FILES
.TP
$XDG_RUNTIME_DIR/mpctl/mpctld.sock
The daemon's socket; without XDG_RUNTIME_DIR, /tmp/mpctl-$UID/mpctld.sock.
.TP
$XDG_STATE_HOME/mpctl/
The state directory (default ~/.local/state/mpctl): the journal mpctld.db, task output, the log mpctld.log.
.TP
$XDG_CONFIG_HOME/mpctl/mpctld.toml
The daemon's configuration file; see mpctld(8).
.SH EXAMPLES
Run a command as a task, its output streamed, its exit code passed through:
.PP
.RS
.nf
mpctl run --timeout 30 -- make -j4
.fi
.RE
.PP
Submit two tasks, the second after the first, and wait for both:
.PP
.RS
.nf
a=$(mpctl submit -- ./fetch.sh)
b=$(mpctl submit --after "$a" -- ./build.sh)
mpctl wait "$a" "$b"
.fi
.RE
.PP
One task per item, four at a time, results in input order:
.PP
.RS
.nf
mpctl map -j 4 -- gzip -k {} ::: *.log
.fi
.RE
.PP
Hold a lock that flock(1) sees while a command runs:
.PP
.RS
.nf
mpctl lock run /tmp/db.lock -- make install
.fi
.RE
.PP
A remote daemon:
.PP
.RS
.nf
export MPCTL_CONNECT=tcp://build-box:7433
export MPCTL_FINGERPRINT=SHA256:3f9a... MPCTL_TOKEN=mpt_...
mpctl run --cwd /srv/src -- make -j8
.fi
.RE
.SH "SEE ALSO"
mpctld(8), flock(1), timeout(1), xargs(1), parallel(1)
)";

// The whole page for ROOT, every command group added to it.
std::string man_page(const CLI::App& root) {
    namespace roff = common::roff;
    std::string description = root.get_description();
    if (description.starts_with(root.get_name() + ": ")) {
        description.erase(0, root.get_name().size() + 2);
    }
    std::string out = roff::title("MPCTL", "1", "mpctl " MPCTL_VERSION, "User Commands");
    out += roff::section("NAME");
    out += roff::escape(root.get_name()) + " \\- " + roff::escape(description) + "\n";
    out += roff::section("SYNOPSIS");
    out += roff::bold(root.get_name()) + " [" + roff::italic("OPTIONS") + "] " + roff::italic("COMMAND") +
           " [" + roff::italic("ARGS") + "]\n";
    out += roff::section("DESCRIPTION");
    out += roff::render(k_man_description);
    out += roff::section("COMMANDS");
    out += roff::commands(root, {"Global options"});
    out += roff::section("OPTIONS");
    out += roff::options(root, {}, true);
    out += roff::render(k_man_rest);
    return out;
}

}  // namespace

void add_man_command(CLI::App& app, AppContext& ctx, std::string_view only) {
    if (!wanted(only, "__man")) {
        return;
    }
    CLI::App* sub =
        app.add_subcommand("__man", "Print mpctl(1) in roff (the build makes the man page with it)");
    sub->group("");  // hidden
    sub->callback([&app, &ctx] {
        ctx.action = [&app] {
            write_out(1, man_page(app));
            return exit_code::ok;
        };
    });
}

}  // namespace mpctl::cli
