#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/base64.hpp>
#include <mpctl/daemon/exec/input_fd_linux.hpp>
#include <mpctl/daemon/warm/warm_pool.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/task_spec.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

const char* state_name(int s) {
    static const char* names[] = {"starting", "ready", "busy", "ending"};
    return names[s];
}

std::string exit_text(const ExitInfo& info) {
    return info.signal ? "killed by signal " + std::to_string(*info.signal)
                       : "exit " + std::to_string(info.exit_code.value_or(-1));
}

// The first bytes of what a worker sent, for a message about it.
std::string shown(const json& message) {
    std::string text = proto::dump_json(message);
    return text.size() > 120 ? text.substr(0, 120) + "..." : text;
}

}  // namespace

WarmPool::WarmPool(Context ctx, std::string name, WorkerSpec spec, int slots)
    : ctx_(std::move(ctx)), name_(std::move(name)), spec_(std::move(spec)), slots_(slots), wanted_(slots) {
    ensure_workers();
}

WarmPool::~WarmPool() {
    *alive_ = false;
    ctx_.timers.cancel(restart_timer_);
    for (auto& [id, w] : workers_) {
        ctx_.timers.cancel(w.idle_timer);
        ctx_.timers.cancel(w.kill_timer);
        w.channel->close();  // the worker reads end of file and exits
        if (w.pid != 0 && w.state == State::busy) {
            ctx_.processes.signal_group(w.pid, SIGTERM);
        }
    }
}

void WarmPool::reconfigure(WorkerSpec spec, int slots) {
    bool new_command = spec.argv != spec_.argv;
    spec_ = std::move(spec);
    slots_ = slots;
    wanted_ = slots;
    if (new_command) {
        failures_ = 0;
        last_failure_.clear();
        ctx_.timers.cancel(restart_timer_);
        restart_timer_ = 0;
    }
    // Idle workers of the old command, or beyond the new size, go now; busy ones after their task.
    int keep = slots;
    for (auto& [id, w] : workers_) {
        if (w.state == State::ending) {
            continue;
        }
        if (w.argv != spec_.argv || keep == 0) {
            if (w.state != State::busy) {
                retire(id, w);
            }
            continue;
        }
        --keep;
    }
    ensure_workers();
    dispatch();
}

int WarmPool::live() const {
    return static_cast<int>(std::count_if(workers_.begin(), workers_.end(), [this](const auto& e) {
        return e.second.state != State::ending && e.second.argv == spec_.argv;
    }));
}

WarmPool::Worker* WarmPool::find(uint64_t id) {
    auto it = workers_.find(id);
    return it == workers_.end() ? nullptr : &it->second;
}

void WarmPool::ensure_workers() {
    if (restart_timer_ != 0) {
        return;  // backing off after workers that ended before they were ready
    }
    // After a failure, one worker at a time until one says hello: no restart storm.
    int limit = failures_ > 0 ? std::min(wanted_, live() + 1) : wanted_;
    while (live() < limit) {
        start_worker();
        if (restart_timer_ != 0) {
            return;
        }
    }
}

void WarmPool::start_worker() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        failed_before_hello(std::string("socketpair: ") + std::strerror(errno));
        return;
    }
    common::UniqueFd ours(sv[0]);
    common::UniqueFd theirs(sv[1]);
    common::UniqueFd log(::open(ctx_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!log) {
        failed_before_hello("log " + ctx_.log_path + ": " + std::strerror(errno));
        return;
    }
    uint64_t id = next_id_++;
    SpawnSpec s;
    SpawnStage stage;
    stage.argv = spec_.argv;
    stage.stderr_fd.reset(::fcntl(log.get(), F_DUPFD_CLOEXEC, 3));
    s.stages.push_back(std::move(stage));
    s.stdout_fd = std::move(log);
    s.cwd = "/";
    std::vector<std::string> env;
    for (const auto& e : ctx_.base_env) {
        if (!e.starts_with("MPCTL_WORKER_FD=") && !e.starts_with("MPCTL_POOL=") &&
            !e.starts_with("MPCTL_WORKER=")) {
            env.push_back(e);
        }
    }
    env.push_back("MPCTL_WORKER_FD=3");
    env.push_back("MPCTL_POOL=" + name_);
    env.push_back("MPCTL_WORKER=" + std::to_string(id));
    s.env = std::make_shared<EnvBlock>(std::move(env));
    s.channel_fd = std::move(theirs);

    Worker& w = workers_[id];
    w.argv = spec_.argv;
    w.channel = std::make_shared<WorkerChannel>(ctx_.io, std::move(ours));
    std::weak_ptr<bool> alive = alive_;
    w.channel->start(
        [this, alive, id](const json& message) {
            if (alive.lock()) {
                on_message(id, message);
            }
        },
        [this, alive, id](const std::string& reason) {
            if (alive.lock()) {
                on_channel_end(id, reason);
            }
        });
    ctx_.processes.spawn(
        std::move(s),
        [this, alive, id](common::Result<std::vector<int>> pids) {
            if (alive.lock()) {
                on_started(id, std::move(pids));
            }
        },
        [this, alive, id](size_t, ExitInfo info) {
            if (alive.lock()) {
                on_exit(id, info);
            }
        });
}

void WarmPool::on_started(uint64_t id, common::Result<std::vector<int>> pids) {
    Worker* w = find(id);
    if (w == nullptr) {
        return;
    }
    if (!pids) {
        std::string why = pids.error().message();
        workers_.erase(id);
        // The command itself cannot start: the tasks waiting for it cannot either.
        fail_queued("pool " + name_ + ": its worker cannot start: " + why);
        failed_before_hello(why);
        return;
    }
    w->pid = pids->front();
    if (w->state == State::ending) {
        ctx_.processes.signal_group(w->pid, SIGKILL);
        return;
    }
    if (w->said_hello) {
        w->state = State::ready;  // its hello came first
        arm_idle(id, *w);
        dispatch();
    }
}

void WarmPool::on_message(uint64_t id, const json& message) {
    Worker* w = find(id);
    if (w == nullptr || w->state == State::ending) {
        return;
    }
    if (message.contains("hello")) {
        if (w->said_hello) {
            kill(*w, "it said hello twice");
            return;
        }
        w->said_hello = true;
        const json& hello = message.at("hello");
        if (auto features = hello.find("features"); features != hello.end() && features->is_array()) {
            w->takes_input = std::find(features->begin(), features->end(), "input") != features->end();
            w->keeps_env = std::find(features->begin(), features->end(), "keeps_env") != features->end();
        }
        failures_ = 0;
        last_failure_.clear();
        if (w->pid != 0) {  // ready once its pid is known too: a task is handed the worker's pid
            w->state = State::ready;
            arm_idle(id, *w);
            dispatch();
        }
        return;
    }
    if (auto done = message.find("done"); done != message.end() && done->is_object()) {
        auto task = done->find("task");
        if (w->state != State::busy || task == done->end() || !task->is_number_integer() || !w->task ||
            task->get<int64_t>() != w->task->spec.task) {
            kill(*w, "it sent a done for no task it runs: " + shown(message));
            return;
        }
        ExitInfo info;
        auto code = done->find("exit_code");
        auto sig = done->find("signal");
        if (code != done->end() && code->is_number_integer() && code->get<int64_t>() >= 0 &&
            code->get<int64_t>() <= 255) {
            info.exit_code = code->get<int>();
        } else if (sig != done->end() && sig->is_number_integer() && sig->get<int64_t>() >= 1 &&
                   sig->get<int64_t>() <= 64) {
            info.signal = sig->get<int>();
        } else {
            kill(*w, "it sent a done without an exit_code (0-255) or a signal (1-64): " + shown(message));
            return;
        }
        if (auto result = done->find("result"); result != done->end() && !result->is_null()) {
            // Kept with the task and shown to every client: what is not base64 of at most 16 KiB
            // (k_max_result_chars) is a broken worker's.
            const std::string* text = result->get_ptr<const std::string*>();
            if (text == nullptr || text->size() > k_max_result_chars || !common::base64_decode(*text)) {
                kill(*w, "it sent a result that is not base64 of at most 16 KiB: " + shown(message));
                return;
            }
            info.result = *text;
        }
        task_done(id, *w, info);
        return;
    }
    kill(*w, "it sent an unknown message: " + shown(message));
}

void WarmPool::on_channel_end(uint64_t id, const std::string& reason) {
    Worker* w = find(id);
    if (w == nullptr) {
        return;
    }
    if (!reason.empty()) {
        kill(*w, reason);
        return;
    }
    // End of file: the worker is on its way out. A task it had ends when its exit is reaped.
    if (w->state != State::busy && w->state != State::ending) {
        retire(id, *w);
    }
}

void WarmPool::on_exit(uint64_t id, ExitInfo info) {
    Worker* w = find(id);
    if (w == nullptr) {
        return;
    }
    ctx_.timers.cancel(w->idle_timer);
    ctx_.timers.cancel(w->kill_timer);
    std::optional<Request> task = std::move(w->task);
    bool before_hello = !w->said_hello;
    int pid = w->pid;
    bool w_signalled = w->signalled;
    std::string w_killed_for = std::move(w->killed_for);
    workers_.erase(id);
    if (task) {
        spdlog::warn("pool {}: worker {} ended during task {} ({})", name_, pid, task->spec.task,
                     exit_text(info));
        // What it had started for the task (a forked child) is in its group: it ends with the task.
        ctx_.processes.signal_group(pid, SIGKILL);
        if (!w_killed_for.empty()) {
            info.note =
                "its worker " + std::to_string(pid) + " broke the protocol and was killed: " + w_killed_for;
        } else if (!w_signalled) {
            info.note =
                "its worker " + std::to_string(pid) + " ended during the task (" + exit_text(info) + ")";
        }
        task->on_exit(0, info);
    } else if (before_hello) {
        failed_before_hello("worker " + std::to_string(pid) + " ended before it said hello (" +
                            exit_text(info) + "; its output is in " + ctx_.log_path + ")");
    }
    ensure_workers();
    dispatch();
}

void WarmPool::task_done(uint64_t id, Worker& w, ExitInfo info) {
    Request task = std::move(*w.task);
    w.task.reset();
    w.state = State::ready;
    ++w.served;
    if ((spec_.max_tasks > 0 && w.served >= spec_.max_tasks) || w.argv != spec_.argv || live() > slots_) {
        retire(id, w);  // as maxtasksperchild: a fresh worker takes the slot
    } else {
        arm_idle(id, w);
    }
    task.on_exit(0, info);
    ensure_workers();
    dispatch();
}

void WarmPool::retire(uint64_t id, Worker& w) {
    w.state = State::ending;
    ctx_.timers.cancel(w.idle_timer);
    w.idle_timer = 0;
    w.channel->close();  // end of file: the worker exits
    std::weak_ptr<bool> alive = alive_;
    w.kill_timer = ctx_.timers.start(k_kill_after, [this, alive, id] {
        if (!alive.lock()) {
            return;
        }
        if (Worker* late = find(id); late != nullptr && late->pid != 0) {
            late->kill_timer = 0;
            ctx_.processes.signal_group(late->pid, SIGKILL);
        }
    });
}

void WarmPool::kill(Worker& w, const std::string& why) {
    spdlog::warn("pool {}: worker {} killed: {}", name_, w.pid, why);
    w.killed_for = why;
    w.state = State::ending;
    ctx_.timers.cancel(w.idle_timer);
    w.idle_timer = 0;
    w.channel->close();
    if (w.pid != 0) {
        ctx_.processes.signal_group(w.pid, SIGKILL);  // its task, if any, ends when it is reaped
    }
}

void WarmPool::failed_before_hello(const std::string& why) {
    ++failures_;
    last_failure_ = why;
    // Up to the one that breaks the pool; a broken pool keeps trying every 30 s without a line each time.
    if (failures_ <= k_failures_before_broken) {
        spdlog::warn("pool {}: {}", name_, why);
    } else {
        spdlog::debug("pool {}: {}", name_, why);
    }
    if (failures_ >= k_failures_before_broken) {
        fail_queued("pool " + name_ + " is broken: its worker ended " + std::to_string(failures_) +
                    " times in a row before it was ready (last: " + why + ")");
    }
    int64_t delay = std::min<int64_t>(30000, int64_t{100} << std::min(failures_ - 1, 20));
    ctx_.timers.cancel(restart_timer_);
    std::weak_ptr<bool> alive = alive_;
    restart_timer_ = ctx_.timers.start(std::chrono::milliseconds(delay), [this, alive] {
        if (alive.lock()) {
            restart_timer_ = 0;
            ensure_workers();
        }
    });
}

void WarmPool::fail_queued(const std::string& why) {
    auto queued = std::exchange(queue_, {});
    for (auto& r : queued) {
        r.on_started(common::plain_error(why));
    }
}

void WarmPool::arm_idle(uint64_t id, Worker& w) {
    ctx_.timers.cancel(w.idle_timer);
    w.idle_timer = 0;
    if (spec_.idle_timeout_s <= 0) {
        return;
    }
    std::weak_ptr<bool> alive = alive_;
    auto ms = std::chrono::milliseconds(static_cast<int64_t>(spec_.idle_timeout_s * 1000));
    w.idle_timer = ctx_.timers.start(ms, [this, alive, id] {
        if (!alive.lock()) {
            return;
        }
        if (Worker* idle = find(id); idle != nullptr && idle->state == State::ready) {
            idle->idle_timer = 0;
            wanted_ = std::max(0, wanted_ - 1);  // not replaced until a task comes
            retire(id, *idle);
        }
    });
}

void WarmPool::run(SpawnSpec spec, Spawner::OnStarted on_started, Spawner::OnExit on_exit) {
    if (spec.stages.size() != 1) {
        on_started(common::plain_error("a pipeline cannot run in warm pool " + name_ +
                                       ": its workers run one command at a time"));
        return;
    }
    if (failures_ >= k_failures_before_broken) {
        on_started(common::plain_error("pool " + name_ + " is broken: its worker ended " +
                                       std::to_string(failures_) +
                                       " times in a row before it was ready (last: " + last_failure_ + ")"));
        return;
    }
    wanted_ = slots_;
    queue_.push_back(Request{std::move(spec), std::move(on_started), std::move(on_exit)});
    ensure_workers();
    dispatch();
}

void WarmPool::dispatch() {
    while (!queue_.empty()) {
        auto it = std::find_if(workers_.begin(), workers_.end(),
                               [](const auto& e) { return e.second.state == State::ready; });
        if (it == workers_.end()) {
            return;
        }
        Request r = std::move(queue_.front());
        queue_.pop_front();
        assign(it->second, std::move(r));
    }
}

void WarmPool::assign(Worker& w, Request request) {
    SpawnSpec& spec = request.spec;
    bool passed_stdin = static_cast<bool>(spec.stdin_fd);
    common::UniqueFd in = std::move(spec.stdin_fd);
    bool input_in_run = spec.input && w.takes_input;
    if (spec.input && !input_in_run) {
        auto fd = input_fd(*spec.input);
        if (!fd) {
            request.on_started(common::plain_error("input: " + fd.error().message()));
            return;
        }
        in = std::move(*fd);
    }
    if (!in && spec.stdin_path) {
        in.reset(::open(spec.stdin_path->c_str(), O_RDONLY | O_CLOEXEC));
        if (!in) {
            request.on_started(
                common::sys_error("stdin: " + *spec.stdin_path, errno, common::Errc::redirection));
            return;
        }
    }
    if (!in && !dev_null_) {
        dev_null_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!dev_null_) {
            request.on_started(common::sys_error("stdin: /dev/null", errno, common::Errc::redirection));
            return;
        }
    }
    if (!spec.stdout_fd) {
        spec.stdout_fd.reset(
            ::open(spec.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    }
    SpawnStage& stage = spec.stages.front();
    if (!stage.stderr_fd) {
        stage.stderr_fd.reset(
            ::open(stage.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    }
    if (!spec.stdout_fd || !stage.stderr_fd) {
        request.on_started(common::sys_error("output", errno));
        return;
    }
    // The paths beside the descriptors, for a worker that cannot take descriptors (one in shell).
    // The run's text written directly: a JSON object built for it and then written out cost the daemon
    // more than the rest of handing a task over, bar the send itself.
    std::string line = "{\"run\":{\"task\":" + std::to_string(spec.task) +
                       ",\"attempt\":" + std::to_string(spec.attempt) + ",\"kind\":\"argv\",\"argv\":[";
    for (size_t i = 0; i < stage.argv.size(); ++i) {
        if (i > 0) {
            line += ',';
        }
        proto::append_json_string(line, stage.argv[i]);
    }
    line += "],\"cwd\":";
    proto::append_json_string(line, spec.cwd);
    line += ",\"stdin_path\":";
    if (passed_stdin || !spec.stdin_path) {
        line += "null";
    } else {
        proto::append_json_string(line, *spec.stdin_path);
    }
    line += ",\"stdout_path\":";
    proto::append_json_string(line, spec.stdout_path);
    line += ",\"stderr_path\":";
    proto::append_json_string(line, stage.stderr_path);
    if (spec.nice || spec.umask || !spec.rlimits.empty()) {
        // What the process layer applies to a task's own process, for the worker to apply to the task's.
        std::map<std::string, uint64_t> rlimits;
        for (const auto& [resource, value] : spec.rlimits) {
            rlimits.emplace(proto::rlimit_name(resource), value);
        }
        json limits = json::object();
        proto::limits_to_json(limits, spec.nice, spec.umask, rlimits);
        std::string text = proto::dump_json(limits);  // {"nice":..,...}: its members go in the run
        line += ',';
        line.append(text, 1, text.size() - 2);
    }
    if (input_in_run) {
        line += ",\"input\":\"" + common::base64_encode(*spec.input) + '"';  // and stdin is /dev/null
    }
    // Without stdin, the pool's one /dev/null: the worker gets a descriptor of its own for it.
    std::vector<int> fds = {in ? in.get() : dev_null_.get(), spec.stdout_fd.get(), stage.stderr_fd.get()};
    if (spec.cgroup_procs_fd) {
        line += ",\"cgroup\":true";  // a fourth descriptor: the cgroup.procs the task's process joins
        fds.push_back(spec.cgroup_procs_fd.get());
    }
    // A pool's tasks mostly share one environment: a worker that keeps the last one it was sent is not
    // sent it again (~40 entries: its text was a tenth of the run's cost to both sides).
    if (!w.keeps_env || !w.env_sent || *w.env_sent != spec.env) {
        if (spec.env != env_block_ || env_text_.empty()) {
            env_block_ = spec.env;
            env_text_ = proto::dump_json(spec.env ? json(spec.env->entries()) : json::array());
        }
        line += ",\"env\":" + env_text_;
    }
    line += "}}";
    if (!w.channel->send(std::move(line), fds)) {
        queue_.push_front(std::move(request));
        kill(w, "its socket refused a task");
        return;
    }
    w.env_sent = spec.env;
    // The worker has its own copies now.
    in.reset();
    spec.stdout_fd.reset();
    stage.stderr_fd.reset();
    ctx_.timers.cancel(w.idle_timer);
    w.idle_timer = 0;
    w.state = State::busy;
    auto started = request.on_started;
    w.task = std::move(request);
    started(std::vector<int>{w.pid});
}

bool WarmPool::signal(int pgid, int signo) {
    for (auto& [id, w] : workers_) {
        if (w.pid == pgid) {
            if (w.state == State::busy) {
                // The task is the worker's: ending it early ends the worker, and a fresh one takes the slot.
                w.signalled = true;
                ctx_.processes.signal_group(pgid, signo);
            }
            return true;
        }
    }
    return false;
}

bool WarmPool::owns(int pid) const {
    return std::any_of(workers_.begin(), workers_.end(),
                       [pid](const auto& e) { return e.second.pid == pid; });
}

json WarmPool::describe() const {
    json processes = json::array();
    for (const auto& [id, w] : workers_) {
        processes.push_back({{"pid", w.pid == 0 ? json(nullptr) : json(w.pid)},
                             {"state", state_name(static_cast<int>(w.state))},
                             {"tasks", w.served}});
    }
    bool broken = failures_ >= k_failures_before_broken;
    return {{"worker", spec_.argv},
            {"max_tasks_per_worker", spec_.max_tasks == 0 ? json(nullptr) : json(spec_.max_tasks)},
            {"worker_idle_timeout", spec_.idle_timeout_s == 0 ? json(nullptr) : json(spec_.idle_timeout_s)},
            {"broken", broken},
            {"broken_reason", broken ? json(last_failure_) : json(nullptr)},
            {"worker_processes", std::move(processes)}};
}

}  // namespace mpctl::daemon
