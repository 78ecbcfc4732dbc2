#pragma once
// What every command group shares: the global options, the action the parsed subcommand chose, and small
// argument helpers. Command groups live in cli/commands/, one file each, and register themselves from
// main.cpp's explicit list.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include <mpctl/cli/client.hpp>

namespace mpctl::cli {

struct AppContext {
    GlobalOptions global;
    std::function<int()> action;  // set by the parsed subcommand's callback; returns the exit code
    // main() cuts the command line at the first "--": CLI11 parses what comes before, and commands that
    // run something take what follows (see command_words).
    bool has_separator = false;
    std::vector<std::string> after_separator;
    bool separator_used = false;
};

// --socket, --state-dir, --json, --no-autostart, --connect, --fingerprint, --token-file: on the root app, and
// again on subcommands that take a command line (they cannot fall through to the root without swallowing the
// command's own words).
void add_global_options(CLI::App& app, GlobalOptions& global);

// A whole number from LO to HI, refused as a person would say it ("--workers: not a number: 'abc'", "--jobs:
// must be from 1 to 100000, got 0"), and shown in --help as N, without the parser's range notation.
[[nodiscard]] CLI::Validator whole_number(int64_t lo, int64_t hi);

// What follows the options in APP's usage line ("-- CMD ARG..."), for commands that take a command line
// CLI11 does not parse. Shown by the formatter use_usage_tails installs on the root app (before any
// subcommand is added: they copy it).
void set_usage_tail(const CLI::App* app, std::string tail);
void use_usage_tails(CLI::App& root);

// The task filter list and clean share (task.list's and task.clean's params): --state (one of STATES),
// --label, --pool, --name.
struct TaskFilterOptions {
    std::vector<std::string> states;
    std::vector<std::string> labels;
    std::string pool;
    std::string name;

    void add_to(CLI::App* sub, const std::vector<std::string>& allowed_states);
    [[nodiscard]] nlohmann::json params() const;
};

// Positive task ids from the command line; throws CliError(usage) on anything else.
[[nodiscard]] std::vector<int64_t> parse_ids(const std::vector<std::string>& args);
[[nodiscard]] int64_t parse_id(const std::string& arg);
// "30", "1.5", "250ms", "5m"; throws CliError(usage) naming FLAG.
[[nodiscard]] double parse_seconds(const std::string& text, const char* flag);

// The process a lock, semaphore or segment is leased to: OWNER_PID if given, else mpctl's parent (the
// shell or script that ran it). A remote daemon has no process of this machine to watch: for one, nullopt
// when HAS_TTL (the lease is the time alone), and a usage error otherwise.
[[nodiscard]] std::optional<int64_t> lease_pid(const GlobalOptions& global, int64_t owner_pid, bool has_ttl);
// Whose holding a release gives back: OWNER_PID, else mpctl's parent; for a remote daemon nullopt (the
// daemon's default).
[[nodiscard]] std::optional<int64_t> release_pid(const GlobalOptions& global, int64_t owner_pid);

// Prints a daemon error (or any CliError) the way README.md says: "mpctl: msg" on stderr, and with JSON
// also {"error": {"code", "message", "data": {"error": name}, "exit_code"}} on stdout. Returns its exit code.
int report_error(bool json, const class CliError& e);

// Each group adds its subcommands; with ONLY set, just that one (building all of them costs more than a
// whole `mpctl submit` round trip, so main builds only what the command line names).
[[nodiscard]] inline bool wanted(std::string_view only, std::string_view name) {
    return only.empty() || only == name;
}

void add_task_submit_commands(CLI::App& app, AppContext& ctx, std::string_view only);  // submit, run
void add_task_query_commands(CLI::App& app, AppContext& ctx, std::string_view only);   // status, list
void add_task_wait_commands(CLI::App& app, AppContext& ctx,
                            std::string_view only);  // wait, as-completed, result
void add_task_logs_commands(CLI::App& app, AppContext& ctx, std::string_view only);  // logs, follow
void add_task_control_commands(CLI::App& app, AppContext& ctx,
                               std::string_view only);  // cancel, kill, remove, clean, restart
void add_daemon_commands(CLI::App& app, AppContext& ctx, std::string_view only);  // daemon start|stop|status
void add_pool_commands(CLI::App& app, AppContext& ctx, std::string_view only);    // pool set|list
void add_map_commands(CLI::App& app, AppContext& ctx, std::string_view only);     // map
void add_lock_commands(CLI::App& app, AppContext& ctx,
                       std::string_view only);  // lock acquire|release|run|list
void add_sync_commands(CLI::App& app, AppContext& ctx, std::string_view only);  // sem, event, barrier
void add_shm_commands(CLI::App& app, AppContext& ctx,
                      std::string_view only);  // shm create|list|info|read|write|unlink
void add_queue_commands(CLI::App& app, AppContext& ctx,
                        std::string_view only);  // queue put|get|info|list|delete
void add_kv_commands(CLI::App& app, AppContext& ctx,
                     std::string_view only);  // kv set|get|del|list|cas|watch
void add_token_commands(CLI::App& app, AppContext& ctx, std::string_view only);  // token create|list|revoke
void add_man_command(CLI::App& app, AppContext& ctx, std::string_view only);     // __man (hidden)
void add_completion_commands(CLI::App& app, AppContext& ctx,
                             std::string_view only);  // completion, __complete (hidden)

}  // namespace mpctl::cli
