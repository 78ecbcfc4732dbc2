#pragma once
// SlurmSpawner: the scheduler's Spawner when pools may be backed by Slurm. A task of a Slurm pool becomes a
// batch job: its script (job_files.hpp) is written to STATE_DIR/slurm, sbatch is run as a process of the
// spawner it wraps (never on the loop), and the job's end is read from the status file its runner writes
// there, seen through inotify: slurmctld is not polled for it. A reconciliation every few seconds (squeue,
// while jobs are out) ends the jobs that will never write one (cancelled while pending, cancelled outside
// mpctl, a node that failed) with what Slurm says.
//
// Tasks handed over in one turn of the loop (or while sbatch is busy) that differ only in their command and
// output files, a map's for one, go as one job array (job_files.hpp) of up to k_max_array elements: one
// sbatch for them all.
//
// The scheduler keys running work by pid; a job has none on this machine, so it is given one that no
// process can have (exec/job_pids.hpp): signals to it become scancel, it is never alive as a process group,
// and it is journaled and re-adopted after a restart like a process, through adopt(). Every other task goes
// to the wrapped spawner. Loop thread only.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/daemon/exec/job_pids.hpp>
#include <mpctl/daemon/exec/spawner.hpp>
#include <mpctl/daemon/slurm/job_files.hpp>
#include <mpctl/daemon/tasks/timers.hpp>

namespace mpctl::daemon {

class SlurmSpawner final : public Spawner {
  public:
    struct Options {
        std::string state_dir;  // the job files go to STATE_DIR/slurm
        std::string runner;     // what a job runs on its node: slurm_runner_path()
        // `sh -c "CHECK \"\$1\"" sh STATE_DIR` must exit 0 before a pool's first job: the state dir (status
        // files, output) is on a file system the nodes share. Empty: not checked.
        std::string shared_check;
        std::chrono::milliseconds reconcile_every{5000};
    };
    // INNER runs every task of the other pools; PROCESSES runs sbatch, squeue and scancel.
    SlurmSpawner(asio::io_context& io, Spawner& inner, Spawner& processes, Timers& timers, Options options);
    ~SlurmSpawner() override;

    // Pool NAME is backed by Slurm with SETTINGS, or not (nullopt).
    void set_pool(const std::string& name, const std::optional<slurm::PoolSettings>& settings);
    [[nodiscard]] std::optional<slurm::PoolSettings> settings(const std::string& name) const;
    // Pool NAME's backend for pool.list: {"kind": "local"} or {"kind": "slurm", partition, account, args,
    // jobs, reachable, error}.
    [[nodiscard]] nlohmann::json describe(const std::string& name) const;

    void spawn(SpawnSpec spec, OnStarted on_started, OnExit on_exit) override;
    void signal_group(int pgid, int signo) override;
    [[nodiscard]] bool group_alive(int pgid) override;
    [[nodiscard]] uint64_t start_ticks(int pid) const override;
    [[nodiscard]] common::Result<void> adopt(int pid, uint64_t start_ticks, const std::string& pool,
                                             OnExit on_exit) override;
    [[nodiscard]] bool when_began(int pid, std::function<void(int64_t)> on_began) override;
    void adoptions_done() override { inner_.adoptions_done(); }
    [[nodiscard]] std::string backend(const std::string& pool) const override {
        return pools_.contains(pool) ? "slurm" : inner_.backend(pool);
    }
    // Both Slurm pools, and DEP_PID a job this daemon submitted (an adopted one may have ended, and even
    // left slurmctld's memory, before the daemon came back: afterok on it could not be submitted).
    [[nodiscard]] bool holds(const std::string& pool, const std::string& dep_pool,
                             int dep_pid) const override;
    // The daemon stops: a task whose job waits for Slurm to be reachable again fails (it was never
    // submitted), and none waits from now on.
    void stop();

  private:
    struct Job {
        std::string pool;
        // One per stage still to end, the last stages of the job's command (one for a plain command, every
        // stage of a pipeline this daemon submitted; after a restart, adopt() adds one per stage that had
        // not ended).
        std::vector<OnExit> on_exit;
        int pid = 0;             // its stand-in pid
        int64_t array = 0;       // an element's array, 0 for a plain job
        int cancelled_with = 0;  // the signal for which mpctl cancelled it outright, not yet started
        int64_t began_ms = 0;    // when its runner began (its job-ID.started file's time), 0: not yet
        bool adopted = false;    // an earlier daemon submitted it
        std::function<void(int64_t)> on_began = nullptr;  // SpawnSpec::on_began, told once started
        int ended_rounds = 0;  // reconciliations that found it ended (or unknown) without a status file
        std::chrono::steady_clock::time_point ended_seen{};  // when the first of them did
    };
    using Done = std::function<void(std::optional<int> exit_code, std::string out, std::string err)>;
    // One task's attempt, until it is part of a submission: JOB.argv and its files are its own, the rest
    // is what the elements of an array share.
    struct Member {
        std::string pool;
        slurm::JobRequest job;
        std::shared_ptr<const EnvBlock> env;
        OnStarted on_started;
        std::vector<OnExit> on_exit;  // as Job's
        std::function<void(int64_t)> on_began;
    };
    // One sbatch (a plain job, or an array of MEMBERS), kept to be run again while Slurm cannot be reached.
    struct Submission {
        std::vector<std::string> argv;
        std::shared_ptr<const EnvBlock> env;
        std::string pool, script_path;
        std::string comment;  // the job's --comment: a job sbatch made although its answer was lost has it
        bool answer_lost = false;  // an earlier sbatch may have made the job: look for it before another
        bool array = false;
        std::vector<Member> members;
        void fail(const std::string& why);
    };
    // Whether POOL's jobs may be submitted as far as the shared-file-system check goes: it is run (once per
    // pool and settings, again after it failed) for the first of them; the members of a pool whose check
    // failed are told so.
    struct SharedCheck {
        enum class State { unknown, running, ok } state = State::unknown;
        uint64_t run = 0;   // numbers the checks: the answer of one made stale by set_pool is dropped
        std::string error;  // the last failure, for pool.list
    };
    [[nodiscard]] bool shared_ok(const std::string& pool);
    void shared_checked(const std::string& pool, std::optional<int> code, const std::string& out,
                        const std::string& err);
    std::map<std::string, SharedCheck> checks_;
    uint64_t check_runs_ = 0;
    // The members waiting in forming_ made into submissions, as many as sbatch may run now: each takes the
    // first waiting member and every later one that can share its array.
    void form();
    void form_soon();
    // ENV for a job: with the daemon's SLURM_CONF added where it has none (the same block for the same ENV).
    std::shared_ptr<const EnvBlock> job_env(std::shared_ptr<const EnvBlock> env);
    [[nodiscard]] static bool can_share(const Member& a, const Member& b);
    // MEMBERS' script written and sbatch's arguments made; nullptr (the members told) if it cannot be.
    std::shared_ptr<Submission> make_submission(std::vector<Member> members);
    void submit(std::shared_ptr<Submission> s);
    // Submission S's job (or array) is ID: it runs from now on.
    void submitted(const std::shared_ptr<Submission>& s, int64_t id);
    // JOB, known as KEY from now on (an element's pid in elements_ already).
    void add_job(const std::string& key, Job job);
    // The key of the job behind stand-in PID (job_pids.hpp), empty if none.
    [[nodiscard]] std::string key_of(int pid) const;
    [[nodiscard]] int next_element_pid();
    // The waiting submissions, once Slurm answers again: each one's job found by its comment (an sbatch
    // whose answer timed out may have made it), or submitted again.
    void resubmit();
    void schedule_resubmit();
    // What sbatch or squeue said when Slurm could not be reached (logged once per change); and that it
    // answers again.
    void unreachable(const std::string& why);
    void reachable();

    // Runs ARGV (ENV: nullptr for the daemon's) as a process of the wrapped spawner; DONE gets its exit code
    // (nullopt: it did not start, or was killed) and what it printed.
    void run(std::vector<std::string> argv, std::shared_ptr<const EnvBlock> env, Done done);
    // sbatch, squeue and scancel in the daemon's PATH.
    void find_commands();
    void watch_status_dir();
    void read_events();
    // Job KEY's status file, if it is there: its job ends with it. True if it ended.
    bool try_status(const std::string& key);
    // Whether job KEY's runner has begun (its job-KEY.started is there): its Job's began_ms, and its task
    // told (on_began).
    void check_started(const std::string& key);
    // Job KEY ended with INFO: its task is told, stage by stage for a pipeline (STAGES: how each ended, as
    // its status file says; empty: each as INFO).
    void end(const std::string& key, ExitInfo info, const std::vector<slurm::JobStatus::Stage>& stages = {});
    void schedule_reconcile();
    // The next reconciliation in k_soon rather than reconcile_every (after a cancel, or a job found ended).
    void reconcile_soon();
    static constexpr std::chrono::milliseconds k_soon{300};
    // How long a status file may take to show (a network file system's attribute cache) before a job that
    // ended without one, and that mpctl did not cancel, is given up on.
    static constexpr std::chrono::seconds k_status_grace{10};
    void reconcile();
    void reconciled(std::optional<int> exit_code, const std::string& out, const std::string& err);

    asio::io_context& io_;
    Spawner& inner_;
    Spawner& processes_;
    Timers& timers_;
    Options options_;
    std::string dir_;  // STATE_DIR/slurm
    std::string sbatch_, squeue_, scancel_;
    std::shared_ptr<const EnvBlock> daemon_env_;
    std::string slurm_conf_;  // the daemon's "SLURM_CONF=...", if it has one
    std::shared_ptr<const EnvBlock> with_conf_from_, with_conf_;  // job_env()'s last block made
    std::map<std::string, slurm::PoolSettings> pools_;
    std::map<std::string, Job> jobs_;   // by key: "J", or "A_I" for an element of an array
    std::map<int, uint64_t> elements_;  // an element's stand-in pid -> its start (job_pids.hpp)
    std::map<int64_t, size_t> arrays_;  // an array's id -> its elements still out
    int next_handle_ = 0;
    std::unique_ptr<asio::posix::stream_descriptor> inotify_;
    TimerId reconcile_timer_ = 0;
    bool reconciling_ = false;
    bool stopped_ = false;
    std::vector<std::shared_ptr<Submission>> waiting_;  // for Slurm to be reachable again
    std::deque<std::shared_ptr<Submission>> queued_;    // for one of the k_max_sbatch to end
    std::deque<Member> forming_;                        // for form()
    bool form_posted_ = false;
    static constexpr int k_max_sbatch = 4;
    // Slurm's default MaxArraySize is 1001 (indexes 0..1000).
    static constexpr size_t k_max_array = 1000;
    int sbatch_running_ = 0;
    TimerId resubmit_timer_ = 0;
    bool soon_ = false;
    bool reachable_ = true;
    std::string last_error_;
    uint64_t runs_ = 0;         // names the output files of the commands run
    uint64_t submissions_ = 0;  // numbers the jobs' comments
};

// mpctl-slurm-job as installed with this daemon (PREFIX/libexec/mpctl, or beside the binary in a build
// tree), where the nodes find it too.
[[nodiscard]] std::string slurm_runner_path();

// A pool's Slurm settings as pool.set's params and the journal hold them, and back.
[[nodiscard]] nlohmann::json to_json(const slurm::PoolSettings& s);
[[nodiscard]] std::optional<slurm::PoolSettings> slurm_settings_from_json(const nlohmann::json& j);

}  // namespace mpctl::daemon
