#pragma once
// What the daemon and a Slurm job say to each other through files and Slurm's commands, as pure functions
// (tested without Slurm): the job script, sbatch's and scancel's argument lists, and the readers of what
// sbatch, squeue and the job's status file print.
//
// A job runs `mpctl-slurm-job STATUS_DIR -- ARGV...` (job_runner.hpp), which writes
// STATUS_DIR/job-KEY.status when its command ends: one line, "mpctl-job 1 exit=N|signal=N start=MS end=MS".
// KEY is the job's id as Slurm's commands name it: "J" for a plain job, "A_I" for element I of array A.
//
// Several tasks that differ only in their command and output files (a map's) go as one job array: its
// script picks each element's command and files by SLURM_ARRAY_TASK_ID, and the runner opens the files.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <mpctl/common/result.hpp>

namespace mpctl::daemon::slurm {

// A pool's Slurm settings (pool.set's backend "slurm").
struct PoolSettings {
    std::string partition;          // empty: the cluster's default
    std::string account;            // empty: the user's default
    std::vector<std::string> args;  // more sbatch options, as given
};

// One command of a pipeline job: its words and its own stderr file.
struct PipelineStage {
    std::vector<std::string> argv;
    std::string stderr_path;
};

// What one task's job needs.
struct JobRequest {
    std::string runner;       // mpctl-slurm-job, as the nodes find it (beside the daemon's own binary)
    std::string status_dir;   // where the runner writes job-ID.status (shared with the nodes)
    std::string script_path;  // where the script is written
    std::vector<std::string> argv;
    // A pipeline's commands (argv unused): the runner connects them with pipes, stage I's stderr in its
    // file; the last one's stdout is the job's. Empty: one command, argv.
    std::vector<PipelineStage> pipeline;
    std::string cwd;
    std::string stdout_path, stderr_path;
    std::optional<std::string> stdin_path;
    std::string name;                   // --job-name
    std::string comment;                // --comment: what finds the job again after a lost answer
    std::optional<int64_t> timeout_ms;  // --time, rounded up to whole minutes
    std::optional<int> cpus, gpus;      // --cpus-per-task, --gpus
    std::optional<uint64_t> mem;        // bytes: --mem in MiB, rounded up
    size_t array_size = 0;              // elements 0..N-1 of a job array (array_script), 0: a plain job
    std::optional<int> array_throttle;  // at most this many of them at once: --array=...%N
    // The jobs ("J" or "A_I") it runs after, once each ended with exit code 0: --dependency=afterok, and
    // cancelled by Slurm if one does not (--kill-on-invalid-dep).
    std::vector<std::string> after;
};

// One task of a job array: its command and output files (the array's JobRequest has the rest).
struct Element {
    std::vector<std::string> argv;
    std::string stdout_path, stderr_path;
};

// The job script: a POSIX sh script that execs the runner on the node (`--stage N STDERR` for each stage of
// a pipeline, their words one after the other after `--`).
[[nodiscard]] std::string job_script(const JobRequest& job);
// An array's script (JOB.array_size == ELEMENTS.size()): element I execs the runner with ELEMENTS[I].
[[nodiscard]] std::string array_script(const JobRequest& job, const std::vector<Element>& elements);
// Where the runner of element I of array A writes what it says itself (Slurm's --output), in STATUS_DIR.
[[nodiscard]] std::string element_log_path(const std::string& dir, std::string_view key);

// sbatch's arguments (argv[0] is SBATCH) for JOB in a pool with SETTINGS.
[[nodiscard]] std::vector<std::string> sbatch_argv(const std::string& sbatch, const JobRequest& job,
                                                   const PoolSettings& settings);

// ARG's option name if it is one of those mpctl sets itself and a pool's slurm_args may not (--array,
// --output, --error, --input, --parsable, --chdir, --wrap, --wait, --comment, --open-mode, --dependency,
// --kill-on-invalid-dep): what mpctl tracks a task's job by, and how it holds a task behind another.
[[nodiscard]] std::optional<std::string> owned_option(std::string_view arg);

// The job id sbatch --parsable printed ("ID" or "ID;CLUSTER"), nullopt if it printed none.
[[nodiscard]] std::optional<int64_t> parse_sbatch_id(std::string_view out);

// Whether sbatch's or squeue's ERROR says Slurm could not be reached (rather than refusing the request).
[[nodiscard]] bool controller_unreachable(std::string_view error);

// The status file's content. A pipeline's says how each stage ended too ("stages=N exit0=C signal1=S ..."),
// beside the whole's exit or signal (exec/pipefail.hpp).
struct JobStatus {
    std::optional<int> exit_code;
    std::optional<int> signal;
    int64_t started_ms = 0, ended_ms = 0;
    struct Stage {
        std::optional<int> exit_code, signal;
    };
    std::vector<Stage> stages;  // a pipeline's, in order; empty for one command
};
[[nodiscard]] std::string format_status(const JobStatus& s);
[[nodiscard]] common::Result<JobStatus> parse_status(std::string_view text);

// Whether KEY is a job's key: "J" or "A_I", digits.
[[nodiscard]] bool is_job_key(std::string_view key);

// `squeue -r -h -t all -o "%i %T"`'s lines: job key -> state (PENDING, RUNNING, COMPLETED, CANCELLED...).
// Lines that are not "KEY STATE" (a range of elements "12_[3-5]", an error) are skipped.
[[nodiscard]] std::map<std::string, std::string> parse_squeue(std::string_view out);

// `squeue -h -t all -o "%i %k"`'s lines: the job (or array) id by comment (the comments mpctl gives its
// jobs have no spaces; other lines are skipped). An array's lines ("12_3", "12_[4-9]") give the array's id.
[[nodiscard]] std::map<std::string, int64_t> parse_comments(std::string_view out);

// Whether Slurm's STATE means the job will not run (any more): it ended, was cancelled or failed.
[[nodiscard]] bool ended_state(std::string_view state);

// The status file of job KEY in DIR, and the file its runner makes when it starts (the job is no longer
// pending: a signal can reach its command).
[[nodiscard]] std::string status_path(const std::string& dir, std::string_view key);
[[nodiscard]] std::string started_path(const std::string& dir, std::string_view key);

// A job Slurm says ended in STATE without a status file (its runner never wrote one): the signal it ended
// with, where one can be told (0 otherwise), and why, for the task's error.
struct NoStatus {
    int signal = 0;
    std::string why;
};
[[nodiscard]] NoStatus without_status(std::string_view key, std::string_view state);

}  // namespace mpctl::daemon::slurm
