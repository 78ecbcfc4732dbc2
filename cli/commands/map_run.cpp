// MapRun (map_run.hpp): setting up, the event loop, and how it ends.

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <poll.h>
#include <random>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/commands/map_run.hpp>
#include <mpctl/cli/map/progress.hpp>
#include <mpctl/cli/signal_pipe.hpp>

namespace mpctl::cli {

namespace {

// The daemon's Slurm job arrays have at most this many elements (Slurm's default MaxArraySize is 1001).
constexpr size_t k_max_array = 1000;

// Signals reach the loop through a self-pipe (see signal_pipe.hpp); a closed stdout (`mpctl map ... | head`)
// is seen as EPIPE and stops the map like a signal.
int install_map_signals() {
    int fd = install_signal_pipe({SIGINT, SIGTERM, SIGHUP});
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ign, nullptr);
    return fd;
}

std::string random_suffix() {
    std::random_device rd;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
    return buf;
}

}  // namespace

MapRun::MapRun(AppContext& ctx, const MapOptions& o, std::vector<std::string> words)
    : ctx_(ctx),
      o_(o),
      progress_(!o.no_progress && (o.progress || ::isatty(2) == 1)),
      results_([this] { progress_.clear(); }, [this] { stdout_closed(); }) {
    auto sep = std::find(words.begin(), words.end(), ":::");
    std::vector<std::string> command(words.begin(), sep);
    if (sep != words.end()) {
        // Each further ::: starts another input source; the items are their cross product.
        std::vector<std::vector<std::string>> groups(1);
        for (auto w = sep + 1; w != words.end(); ++w) {
            if (*w == ":::") {
                groups.emplace_back();
            } else {
                groups.back().push_back(*w);
            }
        }
        if (groups.size() > 1 && o.chunksize > 1) {
            throw CliError(exit_code::usage,
                           "--chunksize: one item per task with several ::: sources (each item is a tuple)");
        }
        source_ = map::ItemSource::from_word_groups(std::move(groups));
    } else {
        source_ = map::ItemSource::from_fd(0);
        if (::isatty(0) == 1) {
            // Forgetting the ::: or the pipe would otherwise look like a hang.
            std::fprintf(stderr,
                         "mpctl: map reads its items from the terminal, one per line (Ctrl-D ends them)\n");
        }
    }
    if (o.task.stdin_file == "-") {
        throw CliError(exit_code::usage, "--stdin -: a map reads its items from stdin; give a file");
    }
    map::TemplateOptions t;
    t.shell = o.task.shell;
    t.colsep = o.colsep;
    t.chunksize = static_cast<size_t>(std::max(1, o.chunksize));
    try {
        template_.emplace(command, t);
    } catch (const std::invalid_argument& e) {
        throw CliError(exit_code::usage, e.what());
    }
    if (!o.halt.empty()) {
        auto h = map::parse_halt(o.halt);
        if (!h) {
            throw CliError(
                exit_code::usage,
                "--halt: expected now,fail=N or soon,fail=N (N >= 1) or never, got '" + o.halt + "'");
        }
        halt_ = *h;
    }
    // The spec shared by every task (cwd, env, options); each batch entry adds its command.
    defaults_ = build_task_spec(o.task, command.empty() ? std::vector<std::string>{"true"} : command);
    defaults_.spec.erase("argv");
    defaults_.spec.erase("shell");
    own_pool_ = o.task.pool.empty();
    std::string map_name = "map-" + std::to_string(::getpid()) + "-" + random_suffix();
    pool_ = own_pool_ ? map_name : o.task.pool;
    defaults_.spec["pool"] = pool_;
    // Every task of the map says which map it was: `list --label map=...` shows one map, and a plain
    // `list` leaves out maps that are over (task.list's hide_finished_maps).
    if (!defaults_.spec.contains("labels")) {
        defaults_.spec["labels"] = json::object();
    }
    if (!defaults_.spec["labels"].contains("map")) {
        defaults_.spec["labels"]["map"] = map_name;
    }
    defaults_text_ = defaults_.params_text();
    struct stat st {};
    stdout_is_pipe_ = ::fstat(1, &st) == 0 && S_ISFIFO(st.st_mode);
    if (!o.joblog.empty()) {
        auto file = map::JoblogFile::create(o.joblog);
        if (!file) {
            joblog_failed(file.error());
        }
        joblog_.emplace(std::move(*file));
    }
}

int MapRun::run() {
    client_.emplace(Client::connect(ctx_.global));
    reconnector_.emplace(ctx_.global);
    int jobs = o_.jobs;
    // A shared pool's size (0: not known, or the map's own pool): when it is no more than -j, the pool
    // itself bounds what runs.
    int pool_size = 0;
    int pool_free = 0;  // its slots nothing holds or waits for
    bool slurm = false;
    if (jobs <= 0 || !own_pool_) {
        // Without -j: the user's pool's size, or the default one's (which a new pool starts with too).
        int default_size = 1;
        json pools = client_->call("pool.list", json::object());
        for (const auto& p : pools.at("pools")) {
            std::string name = p.value("name", std::string());
            if (name == "default") {
                default_size = p.value("workers", 1);
            }
            if (!own_pool_ && name == pool_) {
                pool_size = p.value("workers", 1);
                pool_free = pool_size - p.value("running", 0) - p.value("pending", 0);
                slurm = p.contains("backend") && p["backend"].value("kind", "") == "slurm";
            }
        }
        if (jobs <= 0) {
            jobs = std::max(pool_size > 0 ? pool_size : default_size, 1);
        }
    }
    jobs_ = static_cast<size_t>(jobs);
    if (own_pool_) {
        // Transient: not journaled, dropped by the daemon once this connection is gone and its tasks are
        // done.
        set_own_pool();
        window_ = std::max<size_t>(4 * jobs_, 64);
    } else {
        // A shared pool: at most -j tasks submitted, so that -j bounds what runs. Where the pool's own size
        // does (no more than -j), the map keeps as many again queued behind the running ones: a slot that
        // frees starts the next task at once instead of after a round trip to mpctl (a warm pool's tasks
        // take about that).
        bool pool_bounds = pool_size > 0 && static_cast<size_t>(pool_size) <= jobs_;
        window_ = pool_bounds ? 2 * jobs_ : jobs_;
        // A Slurm pool with room for more than -j: everything it has room for (up to an array's 1000) goes
        // as one array that Slurm throttles to -j (%N), rather than -j tasks and then an sbatch for each one
        // that frees a slot. The next array only once this one is over: two at once would each run -j.
        if (slurm && pool_free > 0 && static_cast<size_t>(pool_free) > jobs_) {
            throttled_ = true;
            window_ = std::min<size_t>(static_cast<size_t>(pool_free), k_max_array);
            defaults_.spec["array_throttle"] = jobs_;
            defaults_text_ = defaults_.params_text();
        }
    }
    signal_fd_ = install_map_signals();
    started_ = std::chrono::steady_clock::now();
    try {
        loop();
    } catch (...) {
        // Do not leave the map's tasks queued or running behind a failure of mpctl itself.
        cancel_all(true);
        throw;
    }
    std::optional<size_t> total = total_tasks();
    size_t not_started = total && *total > done_ ? *total - done_ : 0;
    progress_.finish(succeeded_ + failed_, total,
                     map::outcome_summary(succeeded_, failed_, cancelled_, not_started));
    if (stop_signal_ != 0) {
        return 128 + stop_signal_;
    }
    if (halted_) {
        std::fprintf(stderr, "mpctl: map halted after %zu failed task%s (--halt %s)\n", failures_,
                     failures_ == 1 ? "" : "s", o_.halt.c_str());
    }
    return first_.code();
}

void MapRun::loop() {
    for (;;) {
        while (maybe_submit()) {
        }
        if (finished()) {
            return;
        }
        progress_.draw(succeeded_ + failed_, total_tasks());
        pollfd fds[4];
        nfds_t n = 0;
        fds[n++] = {client_->fd(), POLLIN, 0};
        fds[n++] = {signal_fd_, POLLIN, 0};
        // A pipe on stdout reports POLLERR once its reader is gone: stop then, not at the next write.
        fds[n++] = {stdout_is_pipe_ && !results_.stdout_broken() ? 1 : -1, 0, 0};
        bool want_items = !stopping() && source_.fd() >= 0 &&
                          source_.ready() < window_ * static_cast<size_t>(std::max(1, o_.chunksize));
        if (want_items) {
            fds[n++] = {source_.fd(), POLLIN, 0};
        }
        // Messages read already (or kept inside TLS) are handled first: poll() cannot see them.
        bool buffered = client_->buffered();
        int r = ::poll(fds, n, buffered ? 0 : (progress_.enabled() ? 100 : -1));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw CliError(exit_code::mpctl_failed, std::string("poll: ") + std::strerror(errno));
        }
        if ((fds[1].revents & POLLIN) != 0) {
            for (int signo : take_signals(signal_fd_)) {
                interrupt(signo);
            }
        }
        if ((fds[2].revents & POLLERR) != 0) {
            results_.stdout_closed();
        }
        if (want_items && (fds[3].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            source_.fill();
        }
        if (buffered || (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            try {
                if (!client_->read_available()) {
                    throw ConnectionLost(exit_code::mpctl_failed,
                                         "the daemon closed the connection (did it stop?)");
                }
                while (auto msg = client_->next_message()) {
                    handle(*msg);
                }
            } catch (const ConnectionLost& lost) {
                resume(lost);
            }
            coalesce();
        }
    }
}

void MapRun::resume(const ConnectionLost& lost) {
    std::optional<ConnectionLost> why(lost);
    while (why) {
        if (batch_id_ != 0) {
            throw CliError(why->code(), std::string(why->what()) +
                                            " before it answered a batch of this map's tasks (whether they "
                                            "were queued is unknown: mpctl does not submit them again)");
        }
        reconnector_->reconnect(*client_, *why);
        why.reset();
        try {
            if (own_pool_) {
                // A transient pool lives as long as its connection: this one now. (What of it was still
                // queued when the daemon died, the daemon that came back has cancelled, PROTOCOL.md: the
                // cancellations arrive through the watch below, and those tasks are submitted again.)
                set_own_pool();
            }
            json watch = json::array();
            for (const auto& [task, seq] : seq_of_) {
                watch.push_back(task);
            }
            if (!watch.empty()) {
                client_->send("task.as_completed", {{"ids", watch}});
                if (stopping()) {
                    client_->send("task.cancel", {{"ids", watch}, {"force", force_cancel_}});
                }
            }
        } catch (const ConnectionLost& again) {
            why.emplace(again);
        }
    }
}

// While the daemon has plenty of this map's tasks queued, let completions pile up for a moment before the
// next read: one wake-up for many notifications leaves the CPUs to the tasks and the daemon (with 2000
// `true` tasks on 2 CPUs, about 15% faster). The pause is at most half the time the queue takes to drain at
// the rate seen so far, and never above 5 ms, so the daemon never runs dry.
void MapRun::coalesce() const {
    size_t queued = inflight_ > jobs_ ? inflight_ - jobs_ : 0;
    if (stopping() || queued < 8 || done_ < 16) {
        return;
    }
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    double rate = static_cast<double>(done_) / std::max(elapsed, 1e-3);
    double pause_us = std::min(5000.0, 0.5e6 * static_cast<double>(queued) / rate);
    if (pause_us < 100) {
        return;
    }
    timespec ts{0, static_cast<long>(pause_us * 1000)};
    ::nanosleep(&ts, nullptr);
}

bool MapRun::finished() const {
    if (batch_id_ != 0 || inflight_ != 0 || (unrunnable_ && !stopping())) {
        return false;
    }
    return stopping() || (source_.exhausted() && chunk_.empty() && resubmit_.empty());
}

// Tasks, not items (with --chunksize a task takes several); unknown while the items are still coming.
std::optional<size_t> MapRun::total_tasks() const {
    if (!source_.at_eof()) {
        return std::nullopt;
    }
    size_t chunk = static_cast<size_t>(std::max(1, o_.chunksize));
    return (*source_.total() + chunk - 1) / chunk;
}

void MapRun::set_own_pool() {
    json params = {{"name", pool_}, {"workers", jobs_}, {"transient", true}};
    if (halt_.when != map::HaltPolicy::When::never) {
        // The daemon halts the pool at the failure that halts the map, before the slot it frees is
        // refilled: no task starts after it, as with GNU parallel. Items that failed here without a task
        // count towards the halt too.
        params["halt_after_failures"] = halt_.fail - static_cast<int>(unrunnable_failures_);
    }
    (void)client_->call("pool.set", params);
}

}  // namespace mpctl::cli
