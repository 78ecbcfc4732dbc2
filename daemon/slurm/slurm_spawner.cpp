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
#include <mpctl/common/time.hpp>
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
    for (const auto& e : daemon_env_->entries()) {
        if (e.starts_with("SLURM_CONF=")) {
            slurm_conf_ = e;
        }
    }
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
        checks_.erase(name);
        return;
    }
    auto it = pools_.find(name);
    if (it == pools_.end() || it->second.partition != settings->partition ||
        it->second.account != settings->account || it->second.args != settings->args) {
        checks_.erase(name);  // other nodes, maybe: checked again
    }
    pools_[name] = *settings;
    watch_status_dir();
    if (!forming_.empty()) {
        form_soon();  // what waited for a check that was dropped
    }
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
    if (auto check = checks_.find(name); check != checks_.end() && !check->second.error.empty()) {
        j["shared_check_error"] = check->second.error;  // the last check failed
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
        std::vector<std::string> ids, started;
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
                    if (name.starts_with("job-") && name.ends_with(suffix) &&
                        slurm::is_job_key(name.substr(4, name.size() - 4 - suffix.size()))) {
                        into->emplace_back(name.substr(4, name.size() - 4 - suffix.size()));
                    }
                }
                p += sizeof(struct inotify_event) + ev->len;
            }
        }
        for (const auto& key : started) {
            check_started(key);
        }
        for (const auto& key : ids) {
            try_status(key);
        }
        read_events();
    });
}

void SlurmSpawner::check_started(const std::string& key) {
    auto it = jobs_.find(key);
    struct stat st {};
    if (it == jobs_.end() || it->second.began_ms != 0 ||
        ::stat(slurm::started_path(dir_, key).c_str(), &st) != 0) {
        return;
    }
    // The runner made the file as it began: its time is the job's start, however late it is seen.
    it->second.began_ms =
        std::max<int64_t>(1, int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000);
    if (auto began = std::exchange(it->second.on_began, nullptr)) {
        began(it->second.began_ms);
    }
}

bool SlurmSpawner::when_began(int pid, std::function<void(int64_t)> on_began) {
    if (!is_job_pid(pid)) {
        return inner_.when_began(pid, std::move(on_began));
    }
    std::string key = key_of(pid);
    auto it = jobs_.find(key);
    if (it == jobs_.end()) {
        return false;
    }
    if (it->second.began_ms != 0) {
        on_began(it->second.began_ms);
    } else {
        it->second.on_began = std::move(on_began);
    }
    return true;
}

bool SlurmSpawner::holds(const std::string& pool, const std::string& dep_pool, int dep_pid) const {
    if (!pools_.contains(pool) || !pools_.contains(dep_pool) || !is_job_pid(dep_pid)) {
        return false;
    }
    auto it = jobs_.find(key_of(dep_pid));
    return it != jobs_.end() && !it->second.adopted;
}

bool SlurmSpawner::try_status(const std::string& key) {
    if (!jobs_.contains(key)) {
        return false;
    }
    std::string path = slurm::status_path(dir_, key);
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
        if (status->ended_ms > 0) {
            info.ended_at_ms = status->ended_ms;  // read maybe long after: a daemon that was down meanwhile
        }
    } else {
        info.unknown = true;
        info.note = "Slurm job " + key + ": " + status.error().message();
        spdlog::warn("{} ({})", info.note, path);
    }
    ::unlink(path.c_str());
    end(key, std::move(info), status ? status->stages : std::vector<slurm::JobStatus::Stage>{});
    return true;
}

void SlurmSpawner::end(const std::string& key, ExitInfo info,
                       const std::vector<slurm::JobStatus::Stage>& stages) {
    auto it = jobs_.find(key);
    if (it == jobs_.end()) {
        return;
    }
    Job job = std::move(it->second);
    jobs_.erase(it);
    ::unlink(slurm::started_path(dir_, key).c_str());
    if (job.array == 0) {
        ::unlink((dir_ + "/job-" + key + ".sh").c_str());
    } else {
        elements_.erase(job.pid);
        ::unlink(slurm::element_log_path(dir_, key).c_str());
        // The array's script serves its elements until the last one ends.
        if (auto a = arrays_.find(job.array); a != arrays_.end() && --a->second == 0) {
            arrays_.erase(a);
            ::unlink((dir_ + "/array-" + std::to_string(job.array) + ".sh").c_str());
        }
    }
    // Each callback is a stage's, the last ones of the command: a pipeline's status says how each ended.
    size_t k = job.on_exit.size();
    bool per_stage = stages.size() > 1 && stages.size() >= k;
    for (size_t c = 0; c < k; ++c) {
        size_t stage = per_stage ? stages.size() - k + c : c;
        ExitInfo each = info;
        if (per_stage) {
            each.exit_code = stages[stage].exit_code;
            each.signal = stages[stage].signal;
        }
        job.on_exit[c](stage, std::move(each));
    }
}

void SlurmSpawner::add_job(const std::string& key, Job job) {
    if (job.array != 0) {
        ++arrays_[job.array];
    }
    jobs_[key] = std::move(job);
}

std::string SlurmSpawner::key_of(int pid) const {
    if (!is_element_pid(pid)) {
        return std::to_string(job_of(pid));
    }
    auto it = elements_.find(pid);
    return it == elements_.end() ? std::string() : job_key(pid, it->second);
}

int SlurmSpawner::next_element_pid() {
    // Handles go round: one is free again when its element ended.
    for (;;) {
        int pid = element_pid(next_handle_);
        next_handle_ = next_handle_ == k_max_element_handle ? 0 : next_handle_ + 1;
        if (!elements_.contains(pid)) {
            return pid;
        }
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
        [collect](const common::Result<std::vector<int>>& pids) {
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
    if (spec.stdin_fd || spec.input) {
        return refuse(
            "stdin: a descriptor passed to the daemon (stdin_fd), or an input it holds, cannot reach "
            "a Slurm job (give a path)");
    }
    find_commands();
    if (sbatch_.find('/') == std::string::npos) {
        return refuse("sbatch: command not found in the daemon's PATH (is Slurm's client installed here?)");
    }
    watch_status_dir();
    Member m;
    m.pool = spec.pool;
    slurm::JobRequest& job = m.job;
    job.runner = options_.runner;
    job.status_dir = dir_;
    job.cwd = spec.cwd;
    job.stdout_path = spec.stdout_path;
    job.stderr_path = spec.stages[0].stderr_path;  // a pipeline's stage 0 shares it with the runner's words
    if (spec.stages.size() == 1) {
        job.argv = std::move(spec.stages[0].argv);
    } else {
        // The runner on the node connects them.
        for (auto& stage : spec.stages) {
            job.pipeline.push_back({std::move(stage.argv), std::move(stage.stderr_path)});
        }
    }
    job.stdin_path = spec.stdin_path;
    job.name = spec.name.empty() ? "mpctl-" + std::to_string(spec.task) : spec.name;
    job.timeout_ms = spec.timeout_ms;
    job.cpus = spec.cpus;
    job.mem = spec.mem;
    job.gpus = spec.gpus;
    job.array_throttle = spec.array_throttle;
    job.script_path =
        dir_ + "/task-" + std::to_string(spec.task) + "-" + std::to_string(spec.attempt) + ".sh";
    for (int pid : spec.after) {
        // One that ended meanwhile is the scheduler's to weigh (it stops this task if that one failed).
        if (std::string key = key_of(pid); jobs_.contains(key)) {
            job.after.push_back(std::move(key));
        }
    }
    m.env = job_env(spec.env ? spec.env : daemon_env_);
    m.on_started = std::move(on_started);
    // Told of each stage (the runner reports every one of a pipeline's).
    m.on_exit.assign(std::max<size_t>(1, spec.stages.size()), on_exit);
    m.on_began = std::move(spec.on_began);
    forming_.push_back(std::move(m));
    // Not at once: what the scheduler starts in this turn of the loop may share an array with it.
    form_soon();
}

std::shared_ptr<const EnvBlock> SlurmSpawner::job_env(std::shared_ptr<const EnvBlock> env) {
    // The job gets the task's environment (sbatch's default --export=ALL passes on sbatch's own), and
    // sbatch finds the cluster with the daemon's SLURM_CONF when the task names none. The tasks of a batch
    // share one block, and so do their jobs': can_share() compares them by pointer first.
    auto& entries = env->entries();
    if (slurm_conf_.empty() || std::any_of(entries.begin(), entries.end(), [](const std::string& e) {
            return e.starts_with("SLURM_CONF=");
        })) {
        return env;
    }
    if (env != with_conf_from_) {
        std::vector<std::string> more = entries;
        more.push_back(slurm_conf_);
        with_conf_from_ = env;
        with_conf_ = std::make_shared<const EnvBlock>(std::move(more));
    }
    return with_conf_;
}

void SlurmSpawner::form_soon() {
    if (form_posted_) {
        return;
    }
    form_posted_ = true;
    asio::post(io_, [this] {
        form_posted_ = false;
        form();
    });
}

bool SlurmSpawner::can_share(const Member& a, const Member& b) {
    const slurm::JobRequest &x = a.job, &y = b.job;
    return a.pool == b.pool && x.cwd == y.cwd && x.stdin_path == y.stdin_path &&
           x.timeout_ms == y.timeout_ms && x.cpus == y.cpus && x.mem == y.mem && x.gpus == y.gpus &&
           x.after == y.after && x.pipeline.empty() && y.pipeline.empty() &&
           x.array_throttle == y.array_throttle && (a.env == b.env || a.env->entries() == b.env->entries());
}

void SlurmSpawner::form() {
    // While sbatch is busy members wait here, and the next submission takes all that can share an array.
    while (!stopped_ && sbatch_running_ < k_max_sbatch && queued_.empty()) {
        // The first member whose pool may submit (the others wait for its shared-file-system check).
        auto first = std::find_if(forming_.begin(), forming_.end(),
                                  [this](const Member& m) { return shared_ok(m.pool); });
        if (first == forming_.end()) {
            return;
        }
        std::vector<Member> members;
        members.push_back(std::move(*first));
        auto it = forming_.erase(first);
        while (it != forming_.end() && members.size() < k_max_array) {
            if (can_share(members.front(), *it)) {
                members.push_back(std::move(*it));
                it = forming_.erase(it);
            } else {
                ++it;
            }
        }
        if (auto s = make_submission(std::move(members))) {
            submit(std::move(s));
        }
    }
}

bool SlurmSpawner::shared_ok(const std::string& pool) {
    if (options_.shared_check.empty()) {
        return true;
    }
    SharedCheck& check = checks_[pool];
    if (check.state == SharedCheck::State::ok) {
        return true;
    }
    if (check.state == SharedCheck::State::unknown) {
        check.state = SharedCheck::State::running;
        uint64_t run = check.run = ++check_runs_;
        spdlog::info("Slurm pool {}: checking that {} is shared with the nodes: {}", pool, options_.state_dir,
                     options_.shared_check);
        this->run({"/bin/sh", "-c", options_.shared_check + " \"$1\"", "sh", options_.state_dir}, nullptr,
                  [this, pool, run](std::optional<int> code, std::string out, std::string err) {
                      auto it = checks_.find(pool);
                      if (it != checks_.end() && it->second.run == run) {
                          shared_checked(pool, code, out, err);
                      }
                  });
    }
    return false;
}

void SlurmSpawner::shared_checked(const std::string& pool, std::optional<int> code, const std::string& out,
                                  const std::string& err) {
    SharedCheck& check = checks_[pool];
    if (code == 0) {
        check.state = SharedCheck::State::ok;
        check.error.clear();
        form();
        return;
    }
    // Looked at again for the next task: what failed may have been the cluster, not the file system.
    check.state = SharedCheck::State::unknown;
    std::string said = first_line(err.empty() ? out : err);
    if (said.empty()) {
        said = code ? "exit status " + std::to_string(*code) : "it did not run";
    }
    check.error = "the state dir " + options_.state_dir +
                  " is not on a file system shared with the Slurm nodes, says slurm_shared_check (" + said +
                  ")";
    spdlog::error("Slurm pool {}: {}", pool, check.error);
    std::vector<Member> refused;
    for (auto it = forming_.begin(); it != forming_.end();) {
        if (it->pool == pool) {
            refused.push_back(std::move(*it));
            it = forming_.erase(it);
        } else {
            ++it;
        }
    }
    std::string why = check.error;
    for (auto& m : refused) {
        m.on_started(common::plain_error(why));  // may spawn again: forming_ is left alone meanwhile
    }
    form();
}

void SlurmSpawner::Submission::fail(const std::string& why) {
    for (auto& m : members) {
        m.on_started(common::plain_error(why));
    }
}

std::shared_ptr<SlurmSpawner::Submission> SlurmSpawner::make_submission(std::vector<Member> members) {
    auto s = std::make_shared<Submission>();
    slurm::JobRequest job = members.front().job;
    s->array = members.size() > 1;
    s->pool = members.front().pool;
    s->env = members.front().env;
    // Unique to this submission (another daemon may use the same cluster, and task ids start again in a new
    // state dir): the pid and a counter of this daemon.
    job.comment = "mpctl-" + std::to_string(::getpid()) + "-" + std::to_string(++submissions_);
    std::string text;
    if (s->array) {
        std::vector<slurm::Element> elements;
        bool one_name = true;
        for (const auto& m : members) {
            elements.push_back({m.job.argv, m.job.stdout_path, m.job.stderr_path});
            one_name = one_name && m.job.name == job.name;
        }
        job.array_size = elements.size();
        job.name = one_name ? job.name : "mpctl-array";
        job.script_path = dir_ + "/array-c" + std::to_string(submissions_) + ".sh";
        job.comment += "-array-" + std::to_string(elements.size());
        text = slurm::array_script(job, elements);
    } else {
        job.comment += "-" + job.script_path.substr(job.script_path.rfind('/') + 1);
        job.comment.resize(job.comment.size() - 3);  // "-task-T-A" without ".sh"
        text = slurm::job_script(job);
    }
    s->members = std::move(members);
    s->script_path = job.script_path;
    s->comment = job.comment;
    auto pool = pools_.find(s->pool);
    if (pool == pools_.end()) {  // made local while its tasks waited here
        s->fail("pool " + s->pool + " is no longer backed by Slurm");
        return nullptr;
    }
    {
        std::ofstream script(job.script_path, std::ios::trunc);
        script << text;
        if (!script.flush()) {
            s->fail("cannot write the job script " + job.script_path);
            return nullptr;
        }
    }
    s->argv = slurm::sbatch_argv(sbatch_, job, pool->second);
    return s;
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
        } else {
            form();
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
            s->fail(why);
            return;
        }
        reachable();
        submitted(s, *id);
    });
}

void SlurmSpawner::submitted(const std::shared_ptr<Submission>& s, int64_t id) {
    // The script keeps its job's name, for whoever looks at the directory.
    std::string name = (s->array ? "/array-" : "/job-") + std::to_string(id) + ".sh";
    ::rename(s->script_path.c_str(), (dir_ + name).c_str());
    std::vector<std::string> keys;
    for (size_t i = 0; i < s->members.size(); ++i) {
        Member& m = s->members[i];
        Job job{m.pool, std::move(m.on_exit)};
        job.on_began = std::move(m.on_began);
        std::string key = std::to_string(id);
        if (s->array) {
            key += "_" + std::to_string(i);
            job.pid = next_element_pid();
            job.array = id;
            elements_[job.pid] = element_start(id, static_cast<int64_t>(i));
        } else {
            job.pid = job_pid(id);
        }
        int pid = job.pid;
        size_t stages = job.on_exit.size();
        add_job(key, std::move(job));
        keys.push_back(key);
        // Every stage of a pipeline stands for the job alike: its pid is theirs.
        m.on_started(std::vector<int>(stages, pid));
    }
    for (const auto& key : keys) {
        // The job may have started, or even ended, before sbatch's answer was read.
        check_started(key);
        try_status(key);
    }
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
    std::string why =
        "the daemon stopped before the job was submitted" +
        (last_error_.empty() ? std::string() : " (Slurm could not be reached: " + last_error_ + ")");
    for (auto& s : waiting) {
        ::unlink(s->script_path.c_str());
        s->fail(why);
    }
    auto forming = std::move(forming_);
    forming_.clear();
    for (auto& m : forming) {
        m.on_started(common::plain_error(why));
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
    std::string id = key_of(pgid);
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.cancelled_with != 0) {
        return;  // ended, or cancelled already: it ends with the first signal
    }
    Job& job = it->second;
    check_started(id);
    const std::string& text = id;
    // After a cancel a job that had not started writes no status: the reconciliations find it ended, soon
    // rather than at their pace.
    auto cancelled = [this, id, signo](std::optional<int> code, const std::string&, const std::string& err) {
        if (code != 0 && signo == SIGKILL && jobs_.contains(id)) {
            // The last word of a stop or a forced cancel: without Slurm's ear the task is ended here rather
            // than left running for ever (the job may still run in Slurm, which its error says).
            ExitInfo info;
            info.signal = SIGKILL;
            info.note = "scancel " + id + " failed (" + first_line(err) + "): the Slurm job may still run";
            end(id, std::move(info));
            return;
        }
        reconcile_soon();
    };
    if (job.began_ms == 0 || signo == SIGKILL) {
        // A pending job cannot be signalled, only cancelled; SIGKILL is a cancel in Slurm's terms too
        // (SIGTERM to the job's processes, SIGKILL after KillWait).
        if (job.began_ms == 0) {
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
    // Not a process: any non-zero value lets a plain job's task be journaled as re-adoptable; an element's
    // is its array and index (job_pids.hpp).
    if (!is_job_pid(pid)) {
        return inner_.start_ticks(pid);
    }
    auto it = elements_.find(pid);
    return it != elements_.end() ? it->second : (is_element_pid(pid) ? 0 : 1);
}

common::Result<void> SlurmSpawner::adopt(int pid, uint64_t start_ticks, const std::string& pool,
                                         OnExit on_exit) {
    if (!is_job_pid(pid)) {
        return inner_.adopt(pid, start_ticks, pool, std::move(on_exit));
    }
    Job job{pool, {std::move(on_exit)}};
    job.pid = pid;
    job.adopted = true;
    if (is_element_pid(pid)) {
        int64_t array = 0, index = 0;
        if (!element_of(start_ticks, array, index)) {
            return common::plain_error("pid " + std::to_string(pid) +
                                       " stands for an element of a Slurm job array, but the journal "
                                       "does not say which");
        }
        job.array = array;
        elements_[pid] = start_ticks;
    }
    std::string id = job_key(pid, start_ticks);
    if (auto same = jobs_.find(id); same != jobs_.end() && same->second.adopted) {
        // Another stage of a pipeline's job: told of its own end with the others'.
        same->second.on_exit.push_back(std::move(job.on_exit.front()));
        return {};
    }
    watch_status_dir();
    add_job(id, std::move(job));
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
    // -r: an array's elements each on a line of their own ("12_3"), pending ones too.
    run({squeue_, "-r", "-h", "-t", "all", "-o", "%i %T", "-u", std::to_string(::getuid())}, nullptr,
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
    std::vector<std::string> ids;
    for (const auto& [id, job] : jobs_) {
        ids.push_back(id);
    }
    for (const auto& id : ids) {
        if (try_status(id)) {
            continue;
        }
        auto it = jobs_.find(id);
        auto state = states.find(id);
        if (state != states.end() && !slurm::ended_state(state->second)) {
            it->second.ended_rounds = 0;
            if (state->second == "RUNNING") {
                check_started(id);  // where no inotify event tells (a network file system)
            }
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
