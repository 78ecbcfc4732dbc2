#pragma once
// The common task options of submit, run (and map): turned into a task spec for task.submit.
// A task runs by default like the command would in this shell: this directory, this environment.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace mpctl::cli {

struct TaskOptions {
    std::string name;
    std::vector<std::string> labels;  // K=V
    std::string cwd;
    std::vector<std::string> env;  // K=V, or K to copy it from this environment
    bool env_clear = false;
    std::string stdin_file;
    bool shell = false;
    std::string timeout;
    std::string kill_after;
    int retries = 0;
    std::string retry_delay;
    std::vector<std::string> after;
    std::string pool;
    int priority = 0;
    // Process control.
    bool pipe = false;                   // the command words are stages separated by "|" words
    std::vector<std::string> env_files;  // KEY=VALUE files, applied before --env
    std::optional<int> nice;
    std::vector<std::string> rlimits;  // "nofile=1024,core=0", repeatable
    std::string umask;                 // octal
    std::string max_output;            // bytes per stream, "10M"
    bool cgroup = false;
    int cpus = 0, gpus = 0;  // a Slurm pool's job's (0: not asked)
    std::string mem;         // e.g. 4G
};

void add_task_options(CLI::App* sub, TaskOptions& options);
// --pipe, for the commands that run one command line (submit, run).
void add_pipe_option(CLI::App* sub, TaskOptions& options);

// A task spec ready to send. The environment is kept apart, as JSON text written by hand: it is most of
// the bytes of a submit, and nlohmann's serializer would cost more than the daemon's whole answer.
struct TaskRequest {
    nlohmann::json spec;  // everything but "env"
    std::string env_json;
    [[nodiscard]] std::string params_text() const;  // the spec object with "env" in it
    // --stdin -: this process's stdin goes with the request (SCM_RIGHTS); see
    // Client::pass_fd_with_next_request.
    [[nodiscard]] bool passes_stdin() const { return spec.value("stdin_fd", false); }
};

// The spec for COMMAND (argv, or with --shell the words joined into one shell string).
// Throws CliError(usage) for bad values.
[[nodiscard]] TaskRequest build_task_spec(const TaskOptions& options,
                                          const std::vector<std::string>& command);

// E, a daemon's refusal of a spec built from options, in the options' words: "params.after: no task 99999"
// becomes "--after: no task 99999" (also for a map's batch: params.defaults.X, params.tasks[N].X).
[[nodiscard]] CliError in_option_words(const CliError& e);

struct AppContext;
// The command words of a prefix-command subcommand: "-- CMD ARGS" (what main cut off), or the words from
// the first non-option on ("mpctl run make -j4"), where a later "--" belongs to the command.
[[nodiscard]] std::vector<std::string> command_words(CLI::App* sub, AppContext& ctx);

}  // namespace mpctl::cli
