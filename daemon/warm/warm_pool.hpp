#pragma once
// WarmPool: one warm pool's worker processes (PROTOCOL.md, "Warm workers"), as Python's Pool keeps its
// workers: started once, fed one task at a time over their socket, replaced when they die, retired after
// max_tasks_per_worker tasks or worker_idle_timeout seconds idle. To the scheduler a task on a worker looks
// like any task: WarmSpawner hands it the worker's pid, and its end comes as an exit. Loop thread only.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/daemon/exec/spawner.hpp>
#include <mpctl/daemon/tasks/timers.hpp>
#include <mpctl/daemon/warm/worker_channel.hpp>
#include <mpctl/daemon/warm/worker_spec.hpp>

namespace mpctl::daemon {

class WarmPool {
  public:
    struct Context {
        asio::io_context& io;
        Spawner& processes;  // starts the workers
        Timers& timers;
        std::string log_path;               // the workers' stdout and stderr, appended
        std::vector<std::string> base_env;  // the daemon's environment, "K=V"
    };
    WarmPool(Context ctx, std::string name, WorkerSpec spec, int slots);
    ~WarmPool();  // closes every worker's socket: they exit
    WarmPool(const WarmPool&) = delete;
    WarmPool& operator=(const WarmPool&) = delete;

    // A new worker command or size: workers of another command are retired once idle.
    void reconfigure(WorkerSpec spec, int slots);
    // Runs a task (SPEC: one stage, its descriptors open) on a worker once one is ready.
    void run(SpawnSpec spec, Spawner::OnStarted on_started, Spawner::OnExit on_exit);
    // If PGID is one of this pool's workers: sends SIGNO to its group when it runs a task (which ends the
    // worker) and returns true; false if it is not this pool's.
    bool signal(int pgid, int signo);
    [[nodiscard]] bool owns(int pid) const;
    [[nodiscard]] const WorkerSpec& spec() const { return spec_; }
    // The pool's warm part for pool.list: its worker command and limits, whether it is broken, each worker.
    [[nodiscard]] nlohmann::json describe() const;

    static constexpr int k_failures_before_broken = 5;
    // A done's result: base64 of at most 16 KiB, kept in memory and the journal with its task.
    static constexpr size_t k_max_result_chars = 21848;
    static constexpr std::chrono::milliseconds k_kill_after{5000};

  private:
    struct Request {
        SpawnSpec spec;
        Spawner::OnStarted on_started;
        Spawner::OnExit on_exit;
    };
    enum class State { starting, ready, busy, ending };
    struct Worker {
        int pid = 0;
        State state = State::starting;
        int served = 0;
        bool said_hello = false;
        bool takes_input = false;  // its hello's features name "input": a task's input comes in its run
        bool keeps_env = false;    // ... name "keeps_env": a run may leave out the env of the run before it
        // The environment of the last run sent to it, once one was.
        std::optional<std::shared_ptr<const EnvBlock>> env_sent;
        std::shared_ptr<WorkerChannel> channel;
        std::optional<Request> task;
        TimerId idle_timer = 0;
        TimerId kill_timer = 0;
        std::vector<std::string> argv;  // the command it was started with
        bool signalled = false;         // its task was ended by a signal from the daemon
        std::string killed_for;         // why the daemon killed it, if it did: it broke the protocol
    };

    void start_worker();
    void ensure_workers();
    void dispatch();
    void assign(Worker& w, Request request);
    void on_message(uint64_t id, const nlohmann::json& message);
    void on_channel_end(uint64_t id, const std::string& reason);
    void on_started(uint64_t id, common::Result<std::vector<int>> pids);
    void on_exit(uint64_t id, ExitInfo info);
    void task_done(uint64_t id, Worker& w, ExitInfo info);
    void retire(uint64_t id, Worker& w);
    void kill(Worker& w, const std::string& why);
    void failed_before_hello(const std::string& why);
    void fail_queued(const std::string& why);
    void arm_idle(uint64_t id, Worker& w);
    [[nodiscard]] int live() const;
    [[nodiscard]] Worker* find(uint64_t id);

    Context ctx_;
    std::string name_;
    WorkerSpec spec_;
    int slots_;
    int wanted_;  // workers to keep: the slots, less those that ended idle with nothing to do
    std::map<uint64_t, Worker> workers_;
    uint64_t next_id_ = 1;
    std::deque<Request> queue_;
    int failures_ = 0;  // workers in a row that ended before their hello
    std::string last_failure_;
    TimerId restart_timer_ = 0;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for callbacks that outlive the pool
    common::UniqueFd dev_null_;  // the stdin of the runs without one, opened once
    // The last environment a run carried, as JSON text: a pool's tasks mostly share one, and writing its
    // ~40 entries for every run was a tenth of the daemon's time per task.
    std::shared_ptr<const EnvBlock> env_block_;
    std::string env_text_;
};

}  // namespace mpctl::daemon
