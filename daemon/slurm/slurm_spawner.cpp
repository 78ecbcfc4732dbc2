#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/paths.hpp>
#include <mpctl/common/signals.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/process_spawner.hpp>
#include <mpctl/daemon/slurm/slurm_spawner.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

std::string first_line(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    // sbatch and scancel say "sbatch: error: ..." on a line each: the last says why.
    if (auto nl = text.rfind('\n'); nl != std::string::npos) {
        text = text.substr(nl + 1);
    }
    return text.size() > 500 ? text.substr(0, 500) : text;
}

}  // namespace

std::string slurm_runner_path() {
    std::string dir = common::executable_dir();
    if (dir.empty()) {
        dir = "/usr/bin";
    }
    // Installed: PREFIX/libexec/mpctl beside PREFIX/bin; in a build tree: beside mpctld.
    std::string installed = dir + "/../libexec/mpctl/mpctl-slurm-job";
    return ::access(installed.c_str(), X_OK) == 0 ? installed : dir + "/mpctl-slurm-job";
}

json to_json(const slurm::PoolSettings& s) {
    json j = {{"backend", "slurm"}};
    if (!s.partition.empty()) {
        j["partition"] = s.partition;
    }
    if (!s.account.empty()) {
        j["account"] = s.account;
    }
    if (!s.args.empty()) {
        j["slurm_args"] = s.args;
    }
    return j;
}

std::optional<slurm::PoolSettings> slurm_settings_from_json(const json& j) {
    if (!j.is_object() || j.value("backend", std::string()) != "slurm") {
        return std::nullopt;
    }
    slurm::PoolSettings s;
    s.partition = j.value("partition", std::string());
    s.account = j.value("account", std::string());
    if (auto it = j.find("slurm_args"); it != j.end() && it->is_array()) {
        for (const auto& a : *it) {
            if (a.is_string()) {
                s.args.push_back(a.get<std::string>());
            }
        }
    }
    return s;
}

SlurmSpawner::SlurmSpawner(asio::io_context& io, Spawner& inner, Spawner& processes, Timers& timers,
                           Options options)
    : io_(io),
      inner_(inner),
      processes_(processes),
      timers_(timers),
      options_(std::move(options)),
      dir_(options_.state_dir + "/slurm"),
      daemon_env_(std::make_shared<const EnvBlock>(common::current_environment())) {
    find_commands();
}

void SlurmSpawner::find_commands() {
    // In the daemon's PATH, looked for again while missing: Slurm's client may be installed after the
    // daemon started. A missing one stays a bare name, which the spawn then reports not found.
    for (auto [cmd, name] :
         {std::pair{&sbatch_, "sbatch"}, std::pair{&squeue_, "squeue"}, std::pair{&scancel_, "scancel"}}) {
        if (cmd->find('/') == std::string::npos) {
            *cmd = find_executable(name, daemon_env_->path(), "/").value_or(name);
        }
    }
}

SlurmSpawner::~SlurmSpawner() {
    for (TimerId t : {reconcile_timer_, resubmit_timer_}) {
        if (t != 0) {
            timers_.cancel(t);
        }
    }
}

void SlurmSpawner::set_pool(const std::string& name, const std::optional<slurm::PoolSettings>& settings) {
    if (!settings) {
        pools_.erase(name);
        return;
    }
    pools_[name] = *settings;
    watch_status_dir();
}

std::optional<slurm::PoolSettings> SlurmSpawner::settings(const std::string& name) const {
    auto it = pools_.find(name);
    return it == pools_.end() ? std::nullopt : std::optional<slurm::PoolSettings>(it->second);
}

json SlurmSpawner::describe(const std::string& name) const {
    auto it = pools_.find(name);
    if (it == pools_.end()) {
        return {{"kind", "local"}};
    }
    json j = to_json(it->second);
    j.erase("backend");
    j["kind"] = "slurm";
    size_t jobs = 0;
    for (const auto& [id, job] : jobs_) {
        jobs += job.pool == name ? 1 : 0;
    }
    j["jobs"] = jobs;
    j["reachable"] = reachable_;
    if (!reachable_) {
        j["error"] = last_error_;
    }
    return j;
}

void SlurmSpawner::watch_status_dir() {
    if (inotify_) {
        return;
    }
    if (::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST) {
        spdlog::error("Slurm pools: mkdir {}: {}", dir_, std::strerror(errno));
        return;
    }
    int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd < 0) {
        spdlog::error("Slurm pools: inotify_init1: {}; job ends are only seen by reconciliation",
                      std::strerror(errno));
        return;
    }
    if (::inotify_add_watch(fd, dir_.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE) < 0) {
        spdlog::error("Slurm pools: inotify_add_watch {}: {}; job ends are only seen by reconciliation", dir_,
                      std::strerror(errno));
        ::close(fd);
        return;
    }
    inotify_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
    read_events();
}

void SlurmSpawner::read_events() {
    inotify_->async_wait(asio::posix::stream_descriptor::wait_read, [this](const std::error_code& ec) {
        if (ec) {
            if (ec != asio::error::operation_aborted) {
                spdlog::error("Slurm pools: inotify: {}", ec.message());
            }
            return;
        }
        alignas(struct inotify_event) char buf[16 * 1024];
        std::vector<int64_t> ids, started;
        for (;;) {
            ssize_t n = ::read(inotify_->native_handle(), buf, sizeof buf);
            if (n <= 0) {
                break;
            }
            for (char* p = buf; p < buf + n;) {
                auto* ev = reinterpret_cast<struct inotify_event*>(p);
                std::string_view name = ev->len > 0 ? std::string_view(ev->name) : std::string_view();
                for (auto [suffix, into] : {std::pair{std::string_view(".status"), &ids},
                                            std::pair{std::string_view(".started"), &started}}) {
                    if (name.starts_with("job-") && name.ends_with(suffix)) {
                        std::string digits(name.substr(4, name.size() - 4 - suffix.size()));
                        char* end = nullptr;
                        long long id = std::strtoll(digits.c_str(), &end, 10);
                        if (end != digits.c_str() && *end == '\0') {
                            into->push_back(id);
                        }
                    }
                }
                p += sizeof(struct inotify_event) + ev->len;
            }
        }
        for (int64_t id : started) {
            if (auto it = jobs_.find(id); it != jobs_.end()) {
                it->second.started = true;
            }
        }
        for (int64_t id : ids) {
            try_status(id);
        }
        read_events();
    });
}

void SlurmSpawner::check_started(int64_t id) {
    auto it = jobs_.find(id);
    if (it != jobs_.end() && !it->second.started) {
        it->second.started = ::access(slurm::started_path(dir_, id).c_str(), F_OK) == 0;
    }
}

bool SlurmSpawner::try_status(int64_t id) {
    if (!jobs_.contains(id)) {
        return false;
    }
    std::string path = slurm::status_path(dir_, id);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    std::string_view text(buf, n > 0 ? static_cast<size_t>(n) : 0);
    auto status = slurm::parse_status(text);
    ExitInfo info;
    if (status) {
        info.exit_code = status->exit_code;
        info.signal = status->signal;
    } else {
        info.unknown = true;
        info.note = "Slurm job " + std::to_string(id) + ": " + status.error().message();
        spdlog::warn("{} ({})", info.note, path);
    }
    ::unlink(path.c_str());
    end(id, std::move(info));
    return true;
}

void SlurmSpawner::end(int64_t id, ExitInfo info) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
        return;
    }
    OnExit on_exit = std::move(it->second.on_exit);
    jobs_.erase(it);
    ::unlink((dir_ + "/job-" + std::to_string(id) + ".sh").c_str());
    ::unlink(slurm::started_path(dir_, id).c_str());
    if (on_exit) {
        on_exit(0, std::move(info));
    }
}

void SlurmSpawner::run(std::vector<std::string> argv, std::shared_ptr<const EnvBlock> env, Done done) {
    std::string base = dir_ + "/run-" + std::to_string(++runs_);
    SpawnSpec spec;
    SpawnStage stage;
    stage.argv = std::move(argv);
    stage.stderr_path = base + ".err";
    spec.stages.push_back(std::move(stage));
    spec.stdout_path = base + ".out";
    spec.cwd = dir_;
    spec.env = env ? std::move(env) : daemon_env_;
    auto shared = std::make_shared<Done>(std::move(done));
    auto collect = [base, shared](std::optional<int> code, std::string why) {
        std::string out = common::read_file(base + ".out").value_or(""),
                    err = common::read_file(base + ".err").value_or("");
        ::unlink((base + ".out").c_str());
        ::unlink((base + ".err").c_str());
        (*shared)(code, std::move(out), why.empty() ? std::move(err) : std::move(why));
    };
    processes_.spawn(
        std::move(spec),
        [collect](common::Result<std::vector<int>> pids) {
            if (!pids) {
                collect(std::nullopt, pids.error().message());
            }
        },
        [collect](size_t, ExitInfo info) {
            collect(info.exit_code, info.signal ? "killed by " + common::signal_name(*info.signal) : "");
        });
}

void SlurmSpawner::spawn(SpawnSpec spec, OnStarted on_started, OnExit on_exit) {
    auto pool = pools_.find(spec.pool);
    if (pool == pools_.end()) {
        inner_.spawn(std::move(spec), std::move(on_started), std::move(on_exit));
        return;
    }
    auto refuse = [&](const std::string& why) {
        on_started(common::plain_error(why));
    };
    if (spec.stages.size() != 1) {
        return refuse("a pipeline cannot run in a Slurm pool yet (submit it as --shell 'a | b')");
    }
    if (spec.stdin_fd) {
        return refuse("stdin: a descriptor passed to the daemon cannot reach a Slurm job (give a path)");
    }
    find_commands();
    if (sbatch_.find('/') == std::string::npos) {
        return refuse("sbatch: command not found in the daemon's PATH (is Slurm's client installed here?)");
    }
    watch_status_dir();
    slurm::JobRequest job;
    job.runner = options_.runner;
    job.status_dir = dir_;
    job.argv = spec.stages[0].argv;
    job.cwd = spec.cwd;
    job.stdout_path = spec.stdout_path;
    job.stderr_path = spec.stages[0].stderr_path;
    job.stdin_path = spec.stdin_path;
    job.name = spec.name.empty() ? "mpctl-" + std::to_string(spec.task) : spec.name;
    job.timeout_ms = spec.timeout_ms;
    job.cpus = spec.cpus;
    job.mem = spec.mem;
    job.gpus = spec.gpus;
    job.script_path =
        dir_ + "/task-" + std::to_string(spec.task) + "-" + std::to_string(spec.attempt) + ".sh";
    // Unique to this submission (another daemon may use the same cluster, and task ids start again in a new
    // state dir): the pid and a counter of this daemon.
    job.comment = "mpctl-" + std::to_string(::getpid()) + "-" + std::to_string(++submissions_) + "-task-" +
                  std::to_string(spec.task) + "." + std::to_string(spec.attempt);
    {
        std::ofstream script(job.script_path, std::ios::trunc);
        script << slurm::job_script(job);
        if (!script.flush()) {
            return refuse("cannot write the job script " + job.script_path);
        }
    }
    // The job gets the task's environment (sbatch's default --export=ALL passes on sbatch's own), and
    // sbatch finds the cluster with the daemon's SLURM_CONF when the task names none.
    std::vector<std::string> env = spec.env ? spec.env->entries() : daemon_env_->entries();
    if (const char* conf = std::getenv("SLURM_CONF"); conf != nullptr) {
        bool has = std::any_of(env.begin(), env.end(),
                               [](const std::string& e) { return e.starts_with("SLURM_CONF="); });
        if (!has) {
            env.push_back(std::string("SLURM_CONF=") + conf);
        }
    }
    auto submission = std::make_shared<Submission>();
    submission->argv = slurm::sbatch_argv(sbatch_, job, pool->second);
    submission->env = std::make_shared<const EnvBlock>(std::move(env));
    submission->pool = spec.pool;
    submission->script_path = job.script_path;
    submission->comment = job.comment;
    submission->on_started = std::move(on_started);
    submission->on_exit = std::move(on_exit);
    submit(std::move(submission));
}

void SlurmSpawner::submit(std::shared_ptr<Submission> s) {
    // A few sbatch at a time: a map of hundreds would otherwise fork hundreds at once, which slurmctld
    // serves one by one anyway.
    if (sbatch_running_ >= k_max_sbatch) {
        queued_.push_back(std::move(s));
        return;
    }
    ++sbatch_running_;
    run(s->argv, s->env, [this, s](std::optional<int> code, std::string out, std::string err) {
        --sbatch_running_;
        if (!queued_.empty()) {
            auto next = std::move(queued_.front());
            queued_.pop_front();
            submit(std::move(next));
        }
        auto id = code == 0 ? slurm::parse_sbatch_id(out) : std::nullopt;
        if (!id || *id > k_max_job_id) {
            std::string why = first_line(err.empty() ? out : err);
            if (why.empty()) {
                why = code ? "exit status " + std::to_string(*code) : "it did not run";
            }
            why = why.starts_with("sbatch: ") ? why : "sbatch: " + why;
            if (slurm::controller_unreachable(err) && !stopped_) {
                // A timeout may come after slurmctld took the request: the job may exist.
                s->answer_lost = s->answer_lost || err.find("Socket timed out") != std::string::npos ||
                                 err.find("Zero Bytes") != std::string::npos;
                // Slurm is down, not the job wrong: it waits (its task keeps its slot, without a job id)
                // and is submitted again at the reconciliation's pace, never faster.
                unreachable(why);
                waiting_.push_back(s);
                schedule_resubmit();
                return;
            }
            ::unlink(s->script_path.c_str());
            s->on_started(common::plain_error(why));
            return;
        }
        reachable();
        submitted(s, *id);
    });
}

void SlurmSpawner::submitted(const std::shared_ptr<Submission>& s, int64_t id) {
    // The script keeps its job's name, for whoever looks at the directory.
    ::rename(s->script_path.c_str(), (dir_ + "/job-" + std::to_string(id) + ".sh").c_str());
    jobs_[id] = Job{s->pool, std::move(s->on_exit)};
    s->on_started(std::vector<int>{job_pid(id)});
    // The job may have started, or even ended, before sbatch's answer was read.
    check_started(id);
    try_status(id);
    schedule_reconcile();
}

void SlurmSpawner::resubmit() {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    bool look = std::any_of(waiting.begin(), waiting.end(), [](const auto& s) { return s->answer_lost; });
    if (!look) {
        for (auto& s : waiting) {
            submit(std::move(s));
        }
        return;
    }
    run({squeue_, "-h", "-t", "all", "-o", "%i %k", "-u", std::to_string(::getuid())}, nullptr,
        [this, waiting = std::move(waiting)](std::optional<int> code, std::string out,
                                             std::string err) mutable {
            if (stopped_) {
                waiting_.insert(waiting_.end(), waiting.begin(), waiting.end());
                stop();
                return;
            }
            if (code != 0) {
                unreachable("squeue: " + first_line(err.empty() ? out : err));
                waiting_.insert(waiting_.end(), waiting.begin(), waiting.end());
                schedule_resubmit();
                return;
            }
            reachable();
            auto made = slurm::parse_comments(out);
            for (auto& s : waiting) {
                if (auto it = made.find(s->comment); it != made.end() && it->second <= k_max_job_id) {
                    spdlog::info("Slurm job {} was made by an sbatch whose answer was lost: taken as is",
                                 it->second);
                    submitted(s, it->second);
                } else {
                    s->answer_lost = false;
                    submit(std::move(s));
                }
            }
        });
}

void SlurmSpawner::schedule_resubmit() {
    if (resubmit_timer_ != 0 || waiting_.empty()) {
        return;
    }
    resubmit_timer_ = timers_.start(options_.reconcile_every, [this] {
        resubmit_timer_ = 0;
        resubmit();
    });
}

void SlurmSpawner::stop() {
    stopped_ = true;
    if (resubmit_timer_ != 0) {
        timers_.cancel(resubmit_timer_);
        resubmit_timer_ = 0;
    }
    auto waiting = std::move(waiting_);
    waiting_.clear();
    waiting.insert(waiting.end(), queued_.begin(), queued_.end());
    queued_.clear();
    for (auto& s : waiting) {
        ::unlink(s->script_path.c_str());
        s->on_started(common::plain_error(
            "the daemon stopped before the job was submitted" +
            (last_error_.empty() ? std::string() : " (Slurm could not be reached: " + last_error_ + ")")));
    }
}

void SlurmSpawner::unreachable(const std::string& why) {
    if (reachable_ || why != last_error_) {
        spdlog::warn("Slurm pools: {}; trying again every {} s", why,
                     options_.reconcile_every.count() / 1000.0);
    }
    reachable_ = false;
    last_error_ = why;
}

void SlurmSpawner::reachable() {
    if (!reachable_) {
        spdlog::info("Slurm pools: Slurm answers again");
    }
    reachable_ = true;
    last_error_.clear();
}

void SlurmSpawner::signal_group(int pgid, int signo) {
    if (!is_job_pid(pgid)) {
        inner_.signal_group(pgid, signo);
        return;
    }
    int64_t id = job_of(pgid);
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.cancelled_with != 0) {
        return;  // ended, or cancelled already: it ends with the first signal
    }
    Job& job = it->second;
    check_started(id);
    std::string text = std::to_string(id);
    // After a cancel a job that had not started writes no status: the reconciliations find it ended, soon
    // rather than at their pace.
    auto cancelled = [this, id, signo](std::optional<int> code, const std::string&, const std::string& err) {
        if (code != 0 && signo == SIGKILL && jobs_.contains(id)) {
            // The last word of a stop or a forced cancel: without Slurm's ear the task is ended here rather
            // than left running for ever (the job may still run in Slurm, which its error says).
            ExitInfo info;
            info.signal = SIGKILL;
            info.note = "scancel " + std::to_string(id) + " failed (" + first_line(err) +
                        "): the Slurm job may still run";
            end(id, std::move(info));
            return;
        }
        reconcile_soon();
    };
    if (!job.started || signo == SIGKILL) {
        // A pending job cannot be signalled, only cancelled; SIGKILL is a cancel in Slurm's terms too
        // (SIGTERM to the job's processes, SIGKILL after KillWait).
        if (!job.started) {
            job.cancelled_with = signo;
        }
        run({scancel_, text}, nullptr, cancelled);
        return;
    }
    // To the batch step only: the runner there passes it on to the task's command, once.
    std::string name = common::signal_name(signo);
    run({scancel_, "--batch", "--signal=" + name.substr(3), text}, nullptr,
        [text](std::optional<int> code, const std::string&, const std::string& err) {
            if (code != 0) {
                spdlog::warn("scancel --batch --signal of Slurm job {}: {}", text, first_line(err));
            }
        });
}

bool SlurmSpawner::group_alive(int pgid) {
    // A job's processes are Slurm's to end: nothing of it is left here once it ended.
    return is_job_pid(pgid) ? false : inner_.group_alive(pgid);
}

uint64_t SlurmSpawner::start_ticks(int pid) const {
    // Not a process: any non-zero value lets the task be journaled as re-adoptable.
    return is_job_pid(pid) ? 1 : inner_.start_ticks(pid);
}

common::Result<void> SlurmSpawner::adopt(int pid, uint64_t start_ticks, const std::string& pool,
                                         OnExit on_exit) {
    if (!is_job_pid(pid)) {
        return inner_.adopt(pid, start_ticks, pool, std::move(on_exit));
    }
    int64_t id = job_of(pid);
    watch_status_dir();
    jobs_[id] = Job{pool, std::move(on_exit)};
    check_started(id);
    // Its end is told on the loop, never before adopt() returns.
    asio::post(io_, [this, id] {
        if (!try_status(id)) {
            schedule_reconcile();
        }
    });
    return {};
}

void SlurmSpawner::reconcile_soon() {
    if (reconciling_) {
        soon_ = true;  // once the one under way is over
        return;
    }
    if (reconcile_timer_ != 0) {
        timers_.cancel(reconcile_timer_);
        reconcile_timer_ = 0;
    }
    soon_ = true;
    schedule_reconcile();
}

void SlurmSpawner::schedule_reconcile() {
    if (reconcile_timer_ != 0 || reconciling_ || jobs_.empty()) {
        return;
    }
    auto delay = soon_ ? std::min(k_soon, options_.reconcile_every) : options_.reconcile_every;
    soon_ = false;
    reconcile_timer_ = timers_.start(delay, [this] {
        reconcile_timer_ = 0;
        reconcile();
    });
}

void SlurmSpawner::reconcile() {
    if (jobs_.empty()) {
        return;
    }
    reconciling_ = true;
    run({squeue_, "-h", "-t", "all", "-o", "%i %T", "-u", std::to_string(::getuid())}, nullptr,
        [this](std::optional<int> code, std::string out, std::string err) {
            reconciling_ = false;
            reconciled(code, out, err);
            // A job mpctl cancelled, found ended without a status, gets its second look soon.
            soon_ = soon_ || std::any_of(jobs_.begin(), jobs_.end(), [](const auto& j) {
                        return j.second.ended_rounds > 0 && j.second.cancelled_with != 0;
                    });
            schedule_reconcile();
        });
}

void SlurmSpawner::reconciled(std::optional<int> code, const std::string& out, const std::string& err) {
    if (code != 0) {
        unreachable("squeue: " + first_line(err.empty() ? out : err));
        return;
    }
    reachable();
    auto states = slurm::parse_squeue(out);
    std::vector<int64_t> ids;
    for (const auto& [id, job] : jobs_) {
        ids.push_back(id);
    }
    for (int64_t id : ids) {
        if (try_status(id)) {
            continue;
        }
        auto it = jobs_.find(id);
        auto state = states.find(id);
        if (state != states.end() && !slurm::ended_state(state->second)) {
            it->second.ended_rounds = 0;
            continue;
        }
        // Ended (or forgotten by Slurm) without a status file: one more look for a job mpctl cancelled (it
        // may have started meanwhile), a grace for a status still on its way through a network file system
        // for the others.
        auto now = std::chrono::steady_clock::now();
        if (it->second.ended_rounds++ == 0) {
            it->second.ended_seen = now;
        }
        if (it->second.ended_rounds < 2 ||
            (it->second.cancelled_with == 0 && now - it->second.ended_seen < k_status_grace)) {
            continue;
        }
        ExitInfo info;
        if (it->second.cancelled_with != 0) {
            info.signal = it->second.cancelled_with;  // mpctl cancelled it before it started
        } else {
            auto why = slurm::without_status(id, state == states.end() ? std::string() : state->second);
            if (why.signal != 0) {
                info.signal = why.signal;
            } else {
                info.unknown = true;
            }
            info.note = std::move(why.why);
        }
        end(id, std::move(info));
    }
}

}  // namespace mpctl::daemon
