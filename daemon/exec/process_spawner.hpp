#pragma once
// ProcessSpawner: starts processes under the process rules of docs/ARCHITECTURE.md (spawn_linux.hpp says
// how) on a thread of its own, and watches each with its pidfd on the daemon's io_context, reaping exactly
// its own children.
//
// Why a thread: the clone waits until the child has called exec (CLONE_VFORK), and with tasks starting all
// the time that wait, on a loaded machine, kept the loop from answering clients (a submit answered in
// 0.7-0.9 ms while a map was spawning, against 0.15 ms). The spawn thread owns the child stack and the PATH
// lookups; everything else (the pidfds, the callbacks) stays on the loop.
//
// It also re-adopts the tasks of a daemon that died (adopt): their pidfds join the same epoll set, but they
// are not our children (waitid fails with ECHILD), so their status comes from the exit journal the
// supervising parent writes before it reaps them (ExitRecords), or from PIDFD_GET_INFO
// (common/pidfd_exit.hpp). After `mpctl daemon upgrade` (an exec in the same process) they are its children
// still: those it reaps itself, and their status is the exact one waitid gives.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/exec/exit_journal.hpp>
#include <mpctl/daemon/exec/exit_records.hpp>
#include <mpctl/daemon/exec/spawn_linux.hpp>
#include <mpctl/daemon/exec/spawner.hpp>

namespace mpctl::daemon {

class ProcessSpawner final : public Spawner {
  public:
    explicit ProcessSpawner(asio::io_context& io);
    // Stops the spawn thread; spawns it has not finished, or whose outcome the loop has not heard yet, are
    // dropped and their callbacks never run, even if the loop runs on.
    ~ProcessSpawner() override;
    ProcessSpawner(const ProcessSpawner&) = delete;
    ProcessSpawner& operator=(const ProcessSpawner&) = delete;

    void spawn(SpawnSpec spec, OnStarted on_started, OnExit on_exit) override;
    void signal_group(int pgid, int signo) override;
    [[nodiscard]] bool group_alive(int pgid) override;
    [[nodiscard]] uint64_t start_ticks(int pid) const override;
    // POOL is not looked at: every process this spawner is asked to adopt is a task's own.
    [[nodiscard]] common::Result<void> adopt(int pid, uint64_t start_ticks, const std::string& pool,
                                             OnExit on_exit) override;
    void adoptions_done() override;
    // After an upgrade: the children of this process that it neither spawned nor adopted (the last image's
    // warm workers, the stages of its lost pipelines) are reaped as they end, never left as zombies.
    void reap_strays();
    // No spawn is on its way through the thread: every start it took has reached the loop.
    [[nodiscard]] bool idle();

    // The exit journal (exit_journal_path(STATE_DIR)): where the supervising parent records how the tasks
    // of a daemon that died ended. Without it, an adopted process's status comes from PIDFD_GET_INFO alone.
    void set_exit_journal(const std::string& path) { records_.emplace(path); }
    // After an upgrade: an adopted process that is a child of this one is reaped here (tests adopt their own
    // children to stand for a dead daemon's, which is why it is not the default).
    void set_reaps_own_children() { reaps_own_children_ = true; }
    // How long the status of an adopted process that ended is looked for (k_adopted_exit_wait by default).
    void set_adopted_exit_wait(std::chrono::milliseconds wait) { adopted_exit_wait_ = wait; }

    // Whether the loop may spawn by itself while spawns are quick (by default it may); without, every
    // spawn goes through the thread.
    void set_spawn_on_loop(bool allowed) { spawn_on_loop_ = allowed; }
    // How long a spawn on the loop may take before it counts as slow (k_slow_spawn; tests pass others).
    void set_slow_spawn(std::chrono::microseconds limit) { slow_spawn_ = limit; }
    // Whether spawns go through the thread for now, after slow ones on the loop.
    [[nodiscard]] bool offloading() const { return std::chrono::steady_clock::now() < offload_until_; }

    // The descriptor limits children start with: the daemon raises its own soft limit (it serves many
    // clients), and a task gets the one it would have had from the daemon's parent (select() breaks
    // above 1024). Before the first spawn.
    void set_child_open_files_limit(uint64_t soft, uint64_t hard) {
        child_open_files_ =
            ResourceLimit{RLIMIT_NOFILE, static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)};
    }

  private:
    struct Child {
        common::UniqueFd pidfd;
        std::function<void(ExitInfo)> on_exit;  // empty for a stage torn down before its pipeline started
        uint64_t start_ticks = 0;
    };
    // A process of an earlier daemon's task. Watched while it runs; once it has ended, its status is looked
    // for (in the journal, then with PIDFD_GET_INFO) until found or until its deadline.
    struct Adopted {
        uint64_t start_ticks = 0;
        common::UniqueFd pidfd;  // none for a process that had ended before adopt()
        std::function<void(ExitInfo)> on_exit;
        std::chrono::steady_clock::time_point deadline;
        std::chrono::milliseconds delay{0};  // before the next look
        std::unique_ptr<asio::steady_timer> retry;
        bool own_child = false;  // ours still (the daemon exec'd itself): reaped here, its status exact
    };
    // One spawn on its way through the thread. The thread fills in children and error.
    struct Job {
        SpawnSpec spec;
        OnStarted on_started;
        OnExit on_exit;
        std::vector<SpawnedChild> children;  // started (some of them, when a later stage failed)
        std::optional<common::Error> error;
    };

    // Spawn thread.
    void run_jobs();
    void start_children(Job& job);
    [[nodiscard]] common::Result<std::string> lookup(const std::string& file, const std::string& path,
                                                     const std::string& cwd);
    // What a failure of spawn_child means for the task that wanted to run COMMAND in CWD.
    [[nodiscard]] static common::Error spawn_error(const common::Error& child, const std::string& command,
                                                   const std::string& cwd);

    // Loop thread.
    void spawn_here(std::unique_ptr<Job> job);
    void receive_done();
    void receive(Job& job);
    // The pidfds live in an epoll set of their own, which the loop watches as one descriptor: adding a
    // child is one epoll_ctl, and closing its pidfd removes it (asio would register, arm and remove each).
    void wait_for_exits();
    void watch(int pid, common::UniqueFd pidfd, std::function<void(ExitInfo)> on_exit, uint64_t start_ticks);
    void reap(int pid);
    // Adopted processes.
    void adopted_exited(int pid);
    void look_for_status(int pid);
    void adopted_ended(int pid, ExitInfo info);
    void clear_records_if_done();
    [[nodiscard]] std::optional<ExitInfo> reap_own(int pid);
    void reap_stray(int pid);

    asio::io_context& io_;
    std::optional<ResourceLimit> child_open_files_;
    common::UniqueFd dev_null_;
    asio::posix::stream_descriptor exits_;  // the epoll set of the children's pidfds
    bool waiting_ = false;
    std::unordered_map<int, Child> children_;
    std::unordered_map<int, Adopted> adopted_;             // by pid: live ones cannot share one
    size_t adopted_watched_ = 0;                           // those of adopted_ in the epoll set
    std::unordered_map<int, common::UniqueFd> strays_;     // by pid, their pidfds in the epoll set
    const uint64_t made_at_ticks_ = boottime_ticks_now();  // what a stray started before
    std::optional<ExitRecords> records_;
    bool adopting_ = true;  // until adoptions_done()
    bool reaps_own_children_ = false;
    // The supervisor appends a record right after the exit, before it reaps: the first looks come soon and
    // double from k_first_look; past k_adopted_exit_wait, nothing will tell any more (a supervisor that is
    // gone, a kernel without PIDFD_GET_INFO) and the outcome is unknown.
    static constexpr std::chrono::milliseconds k_first_look{5};
    static constexpr std::chrono::milliseconds k_adopted_exit_wait{10000};
    std::chrono::milliseconds adopted_exit_wait_ = k_adopted_exit_wait;

    std::mutex mutex_;  // guards todo_, done_ and stopping_
    std::condition_variable wake_;
    std::deque<std::unique_ptr<Job>> todo_;
    std::vector<std::unique_ptr<Job>> done_;  // one post to the loop takes all of them
    bool stopping_ = false;
    bool thread_busy_ = false;  // the thread is starting a job's children

    // Spawning on the loop saves two hand-overs per task, which on a quiet machine is what the batch is
    // made of (2,000 tasks on 2 workers: 1.23 s through the thread, 1.00 s on the loop, 0.90 s for a C
    // loop); so the loop spawns while that is quick. Once spawns keep it waiting (k_slow_streak in a row
    // past k_slow_spawn: on a loaded machine the child waits for a CPU before its exec, and a task.get
    // waited 3.7 ms), the thread takes over for k_offload_for. A lower bar sent a quiet batch to the
    // thread half the time (a spawn of `true` there takes 0.3 to 1 ms): 1.21 s.
    static constexpr std::chrono::microseconds k_slow_spawn{1000};
    static constexpr int k_slow_streak = 3;
    static constexpr std::chrono::seconds k_offload_for{2};
    std::chrono::microseconds slow_spawn_ = k_slow_spawn;
    std::chrono::steady_clock::time_point offload_until_{};
    int slow_streak_ = 0;
    bool spawn_on_loop_ = true;
    std::shared_ptr<const char> alive_ = std::make_shared<const char>('\0');  // gone with the spawner

    struct Lookup {
        std::string exe;
        std::chrono::steady_clock::time_point expires;
    };
    std::unordered_map<std::string, Lookup> lookups_;  // recent PATH searches (spawn thread)
    std::thread thread_;                               // last: it starts once the rest is built
};

// Looks up FILE as execvp would, in PATH (the task's, not the daemon's), resolving relative PATH entries
// against CWD. Returns the path to execute; a failure's err is ENOENT (code not_found) or EACCES.
[[nodiscard]] common::Result<std::string> find_executable(const std::string& file, const std::string& path,
                                                          const std::string& cwd);

}  // namespace mpctl::daemon
