// mpctld: flags -> config -> endpoint -> (daemonize) -> (supervise: the supervisor stays here, each daemon
// it forks goes on) -> journal (recovered with --recover) -> Daemon::run. The only place that exits.
// An image exec'd by `mpctl daemon upgrade` takes the endpoint it was handed and skips daemonize and
// supervise: it is the same process, already detached, still its supervisor's child.
//
// Exit codes: 0 stopped cleanly, 1 start-up failed (a damaged journal too), 2 usage error, 3 another mpctld
// holds the state dir or the socket.

#include <cstdio>
#include <cstdlib>
#include <signal.h>
#include <sys/prctl.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <mpctl/common/byte_size.hpp>
#include <mpctl/common/paths.hpp>
#include <mpctl/common/time.hpp>
#include <mpctl/daemon/config.hpp>
#include <mpctl/daemon/daemon.hpp>
#include <mpctl/daemon/exec/output_files.hpp>
#include <mpctl/daemon/man_page.hpp>
#include <mpctl/daemon/remote/tls_identity.hpp>
#include <mpctl/daemon/service/daemonize.hpp>
#include <mpctl/daemon/service/endpoint.hpp>
#include <mpctl/daemon/service/logging.hpp>
#include <mpctl/daemon/service/socket_activation.hpp>
#include <mpctl/daemon/service/supervisor.hpp>
#include <mpctl/daemon/store/recovery.hpp>

namespace {

constexpr int k_exit_failed = 1;
constexpr int k_exit_usage = 2;
constexpr int k_exit_already_running = 3;

int fail(const std::string& message, int code = k_exit_failed) {
    std::fprintf(stderr, "mpctld: %s\n", message.c_str());
    return code;
}

struct Journal {
    std::unique_ptr<mpctl::daemon::Store> store;
    mpctl::daemon::Store::Contents contents;
};

// Opens the journal and reads it back: both find damage (the open checks every page; a read can still
// meet what the check let through).
mpctl::common::Result<Journal> open_journal(const std::string& path, mpctl::daemon::Durability durability) {
    auto store = mpctl::daemon::Store::open(path, durability);
    if (!store) {
        return std::unexpected(store.error());
    }
    auto contents = (*store)->load();
    if (!contents) {
        return std::unexpected(contents.error());
    }
    return Journal{std::move(*store), std::move(*contents)};
}

// What a start says when the journal is damaged and --recover was not given: the journal is the user's
// record of every task, so it is neither repaired nor replaced without being asked to.
std::string damaged_message(const mpctl::common::Error& e) {
    return e.message() +
           ". The journal is damaged; nothing was changed. `mpctld --recover` moves it aside (it is kept) "
           "and starts with what can still be read from it";
}

// --recover: moves a damaged journal aside and salvages it (store/recovery.hpp); a sound one is left alone.
// Returns the opened journal, and sets NOTE to what the person who started mpctld must hear.
mpctl::common::Result<Journal> recover(const mpctl::daemon::DaemonConfig& config, const std::string& path,
                                       std::string& note) {
    using namespace mpctl;
    auto journal = open_journal(path, config.durability);
    if (journal) {
        note = "--recover: the journal " + path + " is sound; nothing was changed";
        spdlog::warn("{}", note);
        return journal;
    }
    if (journal.error().code != common::Errc::damaged) {
        return journal;
    }
    spdlog::warn("{}; --recover: salvaging what can still be read", journal.error().message());
    // Task ids whose output files remain are taken even if no row of the journal says so.
    int64_t min_next_id = daemon::OutputLayout::highest_task_id(config.state_dir) + 1;
    auto report = daemon::recover_journal(path, min_next_id, common::now_unix_ms());
    if (!report) {
        return common::plain_error("--recover: " + report.error().message());
    }
    for (const auto& line : daemon::describe(*report)) {
        spdlog::warn("--recover: {}", line);
    }
    note = "--recover: the damaged journal was moved to " + report->moved_to +
           "; what could be read from it was salvaged (" + config.state_dir + "/mpctld.log says what)";
    return open_journal(path, config.durability);
}

// The socket and the state dir: the flag, then mpctl's own variable ($MPCTL_SOCKET, $MPCTL_STATE_DIR: a
// daemon started with mpctl's environment serves where mpctl looks), then the config file, then the
// defaults. mpctl never reads the file.
std::string resolve_dir_setting(const std::string& flag, const char* variable, const std::string& from_file,
                                std::string (*resolve)(const std::string&)) {
    const char* env = std::getenv(variable);
    if (flag.empty() && (env == nullptr || *env == '\0') && !from_file.empty()) {
        return from_file;
    }
    return resolve(flag);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace mpctl;
    // systemd's variables, out of the environment before anything reads it for tasks.
    daemon::take_notify_socket();
    auto activation = daemon::take_activated_socket();
    // Set when `mpctl daemon upgrade` exec'd this image in the daemon's process: what the last one passed.
    auto handover = daemon::take_handover();
    const std::vector<std::string> own_argv(argv, argv + argc);  // what an upgrade execs again
    CLI::App app{"mpctld: the mpctl daemon (worker pools, futures, pipelines, shared memory, locks)",
                 "mpctld"};
    // Settings, each also a key of the config file (config.hpp); the rest (--config, --foreground,
    // --recover, --check-config, --print-fingerprint, --exit-with-parent, --help-man) say what this run
    // does and are not.
    std::string socket_flag, state_flag, config_flag, log_level, durability, log_max_size, check_config;
    int workers = 0, log_keep = -1;
    double kill_after = -1;
    bool foreground = false, exit_with_parent = false, recover_flag = false, print_fingerprint = false,
         supervise = false, no_supervise = false;
    std::vector<std::string> listen;
    std::string group;
    app.add_flag("-f,--foreground", foreground, "Stay in the foreground and log to stderr");
    auto* supervise_flag = app.add_flag(
        "--supervise", supervise,
        "Run the daemon under a supervising parent that restarts it after a crash and records the "
        "exit status of each task that ends while it is down (STATE_DIR/task-exits); the default "
        "for a daemon that detaches itself, not for one in the foreground");
    app.add_flag("--no-supervise", no_supervise, "Run the daemon alone, without the supervising parent")
        ->excludes(supervise_flag);
    app.add_flag("--recover", recover_flag,
                 "If the journal (STATE_DIR/mpctld.db) is damaged, move it aside to "
                 "mpctld.db.corrupt-<UTC time> (kept), salvage the tasks and pools still readable into a "
                 "fresh one, and start; with a sound journal, change nothing");
    app.add_option("--socket", socket_flag,
                   "Unix socket to serve (default: $MPCTL_SOCKET, then socket in the config file, then "
                   "$XDG_RUNTIME_DIR/mpctl/mpctld.sock, then /tmp/mpctl-$UID/mpctld.sock)");
    app.add_option("--state-dir", state_flag,
                   "Directory for the journal and task output (default: $MPCTL_STATE_DIR, then state_dir in "
                   "the config file, then $XDG_STATE_HOME/mpctl, then ~/.local/state/mpctl)");
    app.add_option("--workers", workers, "Size of the default pool (default: number of CPUs)")
        ->check(CLI::Range(1, 100000));
    app.add_option("--config", config_flag, "Config file (default: $XDG_CONFIG_HOME/mpctl/mpctld.toml)");
    app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    app.add_option("--log-max-size", log_max_size,
                   "Daemonized, rotate STATE_DIR/mpctld.log past this size: bytes, or 64K, 10M (default 10M; "
                   "0: never)")
        ->check([](const std::string& text) {
            auto v = common::parse_byte_size(text);
            return v && (*v == 0 || *v >= daemon::k_min_log_max_size)
                       ? std::string()
                       : std::string("a size such as 10M, 1K or more (0: never rotate)");
        });
    app.add_option("--log-keep", log_keep, "Rotated logs kept, mpctld.log.1 to mpctld.log.N (default 3)")
        ->check(CLI::Range(0, daemon::k_max_log_keep));
    app.add_option("--durability", durability,
                   "full: fsync every commit (survives power loss); normal: survives daemon crashes only")
        ->check(CLI::IsMember({"full", "normal"}));
    app.add_option("--kill-after", kill_after, "Seconds between SIGTERM and SIGKILL when stopping --now")
        ->check(CLI::Range(0.0, 3600.0));
    app.add_option("--group", group,
                   "Run as root, also serve the members of this group (default: mpctl, where it exists)");
    app.add_option("--listen", listen,
                   "Also serve remote clients at tcp://HOST:PORT, over TLS 1.3 with the daemon's own "
                   "certificate and tokens (repeatable; none by default)");
    app.add_option(
           "--check-config", check_config,
           "Check the config file FILE, print \"FILE: ok\" and exit 0, or say what is wrong and where "
           "(line and key) and exit 2")
        ->option_text("FILE");
    app.add_flag("--print-fingerprint", print_fingerprint,
                 "Print the SHA-256 fingerprint of the certificate remote clients pin (making it if there is "
                 "none) and exit");
    app.add_flag("--exit-with-parent", exit_with_parent, "Stop when the process that started mpctld exits")
        ->group("");
    bool help_man = false;  // mpctld(8) in roff, for the build (man_page.hpp)
    app.add_flag("--help-man", help_man, "Print mpctld(8) in roff and exit")->group("");
    app.set_version_flag("--version", MPCTL_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        return fail(e.what(), k_exit_usage);
    }
    if (help_man) {
        std::fputs(daemon::man_page(app).c_str(), stdout);
        return 0;
    }

    if (!check_config.empty()) {
        daemon::DaemonConfig checked;
        if (auto r = daemon::load_config_file(check_config, true, checked); !r) {
            return fail(r.error().message(), k_exit_usage);
        }
        std::printf("%s: ok\n", check_config.c_str());
        return 0;
    }

    daemon::DaemonConfig config;
    config.config_path =
        config_flag.empty() ? common::default_config_path() : common::absolute_path(config_flag);
    if (auto r = daemon::load_config_file(config.config_path, !config_flag.empty(), config); !r) {
        return fail(r.error().message(), k_exit_usage);
    }
    config.config_required = !config_flag.empty();
    config.workers_flag = workers > 0;
    config.log_level_flag = !log_level.empty();
    config.socket_path =
        resolve_dir_setting(socket_flag, "MPCTL_SOCKET", config.socket_path, common::resolve_socket_path);
    config.state_dir =
        resolve_dir_setting(state_flag, "MPCTL_STATE_DIR", config.state_dir, common::resolve_state_dir);
    if (workers > 0) {
        config.workers = workers;
    }
    if (config.workers <= 0) {
        config.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    }
    if (!log_level.empty()) {
        config.log_level = log_level;
    }
    if (!log_max_size.empty()) {
        config.log_max_size = *common::parse_byte_size(log_max_size);
    }
    if (log_keep >= 0) {
        config.log_keep = log_keep;
    }
    if (!durability.empty()) {
        config.durability = *daemon::parse_durability(durability);
    }
    if (kill_after >= 0) {
        config.kill_after_s = kill_after;
    }
    if (!group.empty()) {
        config.group = group;
    }
    if (!listen.empty()) {
        config.listen = listen;
    }
    if (print_fingerprint) {
        auto identity = daemon::load_or_create_identity(config.state_dir);
        if (!identity) {
            return fail(identity.error().message());
        }
        std::printf("%s\n", identity->fingerprint.c_str());
        return 0;
    }
    config.foreground = foreground || daemon::started_by_systemd();
    // Flags win over the file; unset, a daemon that detaches itself has nobody else to bring it back.
    if (supervise || no_supervise) {
        config.supervise = supervise;
    } else if (!config.supervise) {
        config.supervise = !config.foreground;
    }
    config.exit_with_parent = exit_with_parent;

    // A client that goes away must never kill the daemon with SIGPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    daemon::start_logging(config.log_level);

    if (!handover) {
        return fail(handover.error().message());
    }
    const bool upgraded = handover->has_value();
    // Lock and socket first, while errors can still reach the terminal.
    if (!activation) {
        return fail(activation.error().message());
    }
    common::UniqueFd activated;
    if (*activation) {
        auto& passed = **activation;
        if (passed.ignored > 0) {
            spdlog::warn("socket activation: {} more descriptors were passed; mpctld serves only the first",
                         passed.ignored);
        }
        if (!passed.path.empty() && passed.path != config.socket_path) {
            spdlog::warn("socket activation: the passed socket is {}, not {}; serving it", passed.path,
                         config.socket_path);
            config.socket_path = passed.path;
        }
        activated = std::move(passed.fd);
    }
    auto endpoint = upgraded
                        ? common::Result<daemon::Endpoint>(daemon::inherited_endpoint(**handover))
                        : daemon::claim_endpoint(config.state_dir, config.socket_path, std::move(activated));
    if (!endpoint) {
        return fail(endpoint.error().message(), endpoint.error().code == common::Errc::already_running
                                                    ? k_exit_already_running
                                                    : k_exit_failed);
    }
    daemon::Readiness readiness;
    const std::string log_path = config.foreground ? std::string() : config.state_dir + "/mpctld.log";
    // Upgraded: detached long ago (its original parent is gone), descriptor 2 still the log.
    if (!config.foreground && !upgraded) {
        auto detached = daemon::daemonize(log_path);
        if (!detached) {
            return fail(detached.error().message());
        }
        readiness = std::move(*detached);
        daemon::record_pid(*endpoint);  // supervised, the supervisor's: the process to signal
    }
    if (config.exit_with_parent) {
        pid_t parent = ::getppid();
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) {
            return fail("parent exited during start-up");
        }
    }
    daemon::Supervised supervised;
    if (upgraded) {
        // Still the child of the same supervisor, and still linked to it.
        config.supervisor_pid = (*handover)->supervisor;
        config.restarts = (*handover)->restarts;
        if ((*handover)->link_fd >= 0) {
            supervised = daemon::Supervised(config.supervisor_pid, config.restarts,
                                            common::UniqueFd((*handover)->link_fd));
        }
    } else if (*config.supervise) {
        auto supervision = daemon::supervise({config.state_dir, log_path}, readiness);
        if (!supervision) {
            readiness.failed(supervision.error().message());
            return fail(supervision.error().message());
        }
        if (supervision->exit_code) {
            return *supervision->exit_code;  // the supervisor, done
        }
        supervised = std::move(supervision->daemon);
        config.supervisor_pid = supervised.supervisor_pid();
        config.restarts = supervised.restarts();
    }
    config.supervisor_link = supervised.link();
    daemon::relay_notifications(supervised.link());
    if (!config.foreground) {
        // After supervise: a restarted daemon would otherwise keep the supervisor's logger (no rotation).
        daemon::log_to_file(log_path, config.log_max_size, config.log_keep);
    }

    const std::string journal_path = config.state_dir + "/mpctld.db";
    std::string note;
    auto journal =
        recover_flag ? recover(config, journal_path, note) : open_journal(journal_path, config.durability);
    if (!journal) {
        std::string message = journal.error().code == common::Errc::damaged && !recover_flag
                                  ? damaged_message(journal.error())
                                  : journal.error().message();
        readiness.failed(message);
        if (!endpoint->activated) {
            daemon::release_socket(config.socket_path);
        }
        return fail(message);
    }
    const bool activated_socket = endpoint->activated;
    try {
        daemon::Daemon d(config, std::move(*endpoint), std::move(journal->store),
                         std::move(journal->contents));
        d.set_upgrade_source(own_argv, upgraded ? (*handover)->upgrades : 0);
        return d.run([&] {
            readiness.ready(note);
            supervised.ready();
        });
    } catch (const std::exception& e) {
        readiness.failed(e.what());
        if (!activated_socket) {
            daemon::release_socket(config.socket_path);
        }
        return fail(e.what());
    }
}
