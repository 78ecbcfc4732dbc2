// mpctl map: one task per item (after ::: or one per stdin line), like Pool.map / imap_unordered / starmap,
// xargs -P and GNU parallel.
//
// One event loop over the daemon connection, mpctl's stdin (when the items come from there) and a
// self-pipe for signals. The map gets a pool of its own, sized -j, and keeps a window of submitted but
// unfinished tasks larger than -j, refilled with task.submit_batch as completions arrive, so the daemon
// always has the next task queued and starts it the moment a slot frees (with --pool, the user's pool is
// shared, so the window is -j itself). Completions arrive as task.completed notifications of one
// task.as_completed per batch. A finished task's output is copied from its stdout_path/stderr_path files,
// whole, in input order (the later ones wait as ids and paths; their output stays on disk) or in
// completion order with --unordered.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <random>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <unordered_map>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/map/command_template.hpp>
#include <mpctl/cli/map/halt.hpp>
#include <mpctl/cli/map/items.hpp>
#include <mpctl/cli/map/joblog.hpp>
#include <mpctl/cli/map/progress.hpp>
#include <mpctl/cli/map/reorder.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/cli/signal_pipe.hpp>
#include <mpctl/cli/task_exit.hpp>
#include <mpctl/cli/task_options.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/task_status.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

struct MapOptions {
    TaskOptions task;
    int jobs = 0;
    bool unordered = false;
    int chunksize = 1;
    std::string halt;
    std::string joblog;
    std::optional<std::string> colsep;
    bool progress = false;
    bool no_progress = false;
};

// A batch request stays well under the daemon's 1 MiB line limit.
constexpr size_t k_max_batch_bytes = 512 * 1024;
// In input order, at most this many finished tasks wait for an earlier one before submitting pauses
// (each waits as an id and two paths: a few MB at most).
constexpr size_t k_max_waiting = 100'000;

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

// What waits for its turn in input order.
struct Finished {
    std::string stdout_path;
    std::string stderr_path;
    std::string json_line;  // with --json
};

class MapRun {
  public:
    MapRun(AppContext& ctx, const MapOptions& o, std::vector<std::string> words) : ctx_(ctx), o_(o) {
        auto sep = std::find(words.begin(), words.end(), ":::");
        std::vector<std::string> command(words.begin(), sep);
        if (sep != words.end()) {
            source_ = map::ItemSource::from_words(std::vector<std::string>(sep + 1, words.end()));
        } else {
            source_ = map::ItemSource::from_fd(0);
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
        pool_ = own_pool_ ? "map-" + std::to_string(::getpid()) + "-" + random_suffix() : o.task.pool;
        defaults_.spec["pool"] = pool_;
        defaults_text_ = defaults_.params_text();
        progress_ = !o.no_progress && (o.progress || ::isatty(2) == 1);
        struct stat st {};
        stdout_is_pipe_ = ::fstat(1, &st) == 0 && S_ISFIFO(st.st_mode);
        if (!o.joblog.empty()) {
            joblog_ = std::fopen(o.joblog.c_str(), "we");
            if (joblog_ == nullptr) {
                throw CliError(exit_code::mpctl_failed,
                               "--joblog: cannot write " + o.joblog + ": " + std::strerror(errno));
            }
            write_joblog(map::joblog_header());
        }
    }
    MapRun(const MapRun&) = delete;
    MapRun& operator=(const MapRun&) = delete;
    ~MapRun() {
        if (joblog_ != nullptr) {
            std::fclose(joblog_);
        }
    }

    int run() {
        client_.emplace(Client::connect(ctx_.global));
        int jobs = o_.jobs;
        if (jobs <= 0) {
            // The pool's size: the user's pool, or the default one (which a new pool starts with too).
            int default_size = 1;
            json pools = client_->call("pool.list", json::object());
            for (const auto& p : pools.at("pools")) {
                std::string name = p.value("name", std::string());
                if (name == "default") {
                    default_size = p.value("workers", 1);
                }
                if (!own_pool_ && name == pool_) {
                    jobs = p.value("workers", 1);
                }
            }
            jobs = std::max(jobs > 0 ? jobs : default_size, 1);
        }
        jobs_ = static_cast<size_t>(jobs);
        if (own_pool_) {
            // Transient: not journaled, dropped by the daemon once this connection is gone and its tasks are
            // done.
            (void)client_->call("pool.set", {{"name", pool_}, {"workers", jobs}, {"transient", true}});
            window_ = std::max<size_t>(4 * jobs_, 64);
        } else {
            window_ = jobs_;
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
        if (progress_) {
            // The last state stays on the terminal.
            draw_progress(true);
            write_out(2, "\n");
            line_shown_ = false;
        }
        if (joblog_ != nullptr && std::fflush(joblog_) != 0) {
            std::fprintf(stderr, "mpctl: --joblog: %s\n", std::strerror(errno));
        }
        if (stop_signal_ != 0) {
            return 128 + stop_signal_;
        }
        if (halted_) {
            std::fprintf(stderr, "mpctl: map halted after %zu failed task%s (--halt %s)\n", failures_,
                         failures_ == 1 ? "" : "s", o_.halt.c_str());
        }
        return first_.code();
    }

  private:
    void loop() {
        for (;;) {
            maybe_submit();
            if (finished()) {
                return;
            }
            draw_progress(false);
            pollfd fds[4];
            nfds_t n = 0;
            fds[n++] = {client_->fd(), POLLIN, 0};
            fds[n++] = {signal_fd_, POLLIN, 0};
            // A pipe on stdout reports POLLERR once its reader is gone: stop then, not at the next write.
            fds[n++] = {stdout_is_pipe_ && !broken_pipe_ ? 1 : -1, 0, 0};
            bool want_items = !stopping() && source_.fd() >= 0 &&
                              source_.ready() < window_ * static_cast<size_t>(std::max(1, o_.chunksize));
            if (want_items) {
                fds[n++] = {source_.fd(), POLLIN, 0};
            }
            int r = ::poll(fds, n, progress_ ? 100 : -1);
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
                stdout_closed();
            }
            if (want_items && (fds[3].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                source_.fill();
            }
            if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                if (!client_->read_available()) {
                    throw CliError(exit_code::mpctl_failed,
                                   "the daemon closed the connection (did it stop?)");
                }
                while (auto msg = client_->next_message()) {
                    handle(*msg);
                }
                coalesce();
            }
        }
    }

    // While the daemon has plenty of this map's tasks queued, let completions pile up for a moment before
    // the next read: one wake-up for many notifications leaves the CPUs to the tasks and the daemon (with
    // 2000 `true` tasks on 2 CPUs, about 15% faster). The pause is at most half the time the queue takes to
    // drain at the rate seen so far, and never above 5 ms, so the daemon never runs dry.
    void coalesce() const {
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

    [[nodiscard]] bool stopping() const { return stop_signal_ != 0 || halted_ || broken_pipe_; }

    [[nodiscard]] bool finished() const {
        if (batch_id_ != 0 || inflight_ != 0) {
            return false;
        }
        return stopping() || (source_.exhausted() && chunk_.empty());
    }

    // Sends the next batch if there is room in the window and items to fill it.
    void maybe_submit() {
        if (batch_id_ != 0 || stopping()) {
            return;
        }
        if (!o_.unordered && reorder_.waiting() >= k_max_waiting) {
            return;
        }
        size_t free = window_ > inflight_ ? window_ - inflight_ : 0;
        // Batches of a quarter window at least, unless the daemon would idle or no more items are coming.
        bool worth_it = free >= std::max<size_t>(1, window_ / 4) || inflight_ < jobs_ || source_.at_eof();
        if (free == 0 || !worth_it) {
            return;
        }
        std::string tasks;
        size_t count = 0;
        size_t chunk = static_cast<size_t>(std::max(1, o_.chunksize));
        while (count < free && tasks.size() < k_max_batch_bytes) {
            while (chunk_.size() < chunk) {
                auto item = source_.next();
                if (!item) {
                    break;
                }
                chunk_.push_back(std::move(*item));
            }
            if (chunk_.empty() || (chunk_.size() < chunk && !source_.at_eof())) {
                break;
            }
            tasks += tasks.empty() ? "[" : ",";
            append_task(tasks);
            chunk_.clear();
            ++count;
        }
        if (count == 0) {
            return;
        }
        tasks += "]";
        std::string params = R"({"defaults":)" + defaults_text_ + R"(,"tasks":)" + tasks + "}";
        batch_id_ = client_->send_params_text("task.submit_batch", params);
        batch_first_seq_ = next_seq_;
        batch_count_ = count;
        next_seq_ += count;
        inflight_ += count;
    }

    void append_task(std::string& out) const {
        if (template_->shell()) {
            out += R"({"shell":)";
            proto::append_json_string(out, template_->script(chunk_));
            out += "}";
            return;
        }
        out += R"({"argv":[)";
        bool first = true;
        for (const auto& w : template_->argv(chunk_)) {
            if (!first) {
                out += ",";
            }
            first = false;
            proto::append_json_string(out, w);
        }
        out += "]}";
    }

    void handle(const json& msg) {
        auto id_it = msg.find("id");
        if (id_it == msg.end()) {
            if (msg.value("method", std::string()) == "task.completed") {
                completed(msg.at("params").at("task"));
            }
            return;
        }
        int64_t id = id_it->is_number_integer() ? id_it->get<int64_t>() : 0;
        if (auto err = msg.find("error"); err != msg.end()) {
            if (id == batch_id_) {
                // Nothing of this batch was queued (a batch is all or nothing).
                inflight_ -= batch_count_;
                batch_id_ = 0;
            }
            throw error_from_daemon(*err);
        }
        if (id != batch_id_) {
            return;  // as_completed's final answer, or a cancel's
        }
        batch_id_ = 0;
        const json& ids = msg.at("result").at("ids");
        json watch = json::array();
        uint64_t seq = batch_first_seq_;
        for (const auto& v : ids) {
            int64_t task = v.get<int64_t>();
            seq_of_.emplace(task, seq++);
            watch.push_back(task);
        }
        client_->send("task.as_completed", {{"ids", watch}});
        if (stopping()) {
            // Submitted before a halt or a signal: it goes the way of the others.
            client_->send("task.cancel", {{"ids", watch}, {"force", force_cancel_}});
        }
    }

    void completed(const json& task) {
        proto::TaskStatus s = proto::status_from_json(task);
        auto it = seq_of_.find(s.id);
        if (it == seq_of_.end()) {
            return;
        }
        uint64_t seq = it->second;
        seq_of_.erase(it);
        --inflight_;
        ++done_;
        int code = proto::mirror_exit_code(s);
        // Tasks that the map itself cancelled (a halt, Ctrl-C) do not speak for its exit code.
        bool cancelled_by_us = stopping() && s.state == proto::TaskState::cancelled;
        if (!cancelled_by_us) {
            first_.add_code(seq, code);
            if (code != 0) {
                ++failures_;
                if (!halted_ && halt_.triggered(static_cast<int>(failures_))) {
                    halt();
                }
            }
        }
        if (joblog_ != nullptr) {
            map::JoblogEntry e;
            e.seq = seq + 1;
            e.id = s.id;
            e.exit_code = s.exit_code;
            e.signal = s.signal;
            e.started_at_ms = s.started_at_ms;
            e.duration_ms = s.duration_ms();
            e.command = map::joblog_command(s.argv, s.shell);
            write_joblog(map::joblog_line(e));
        }
        Finished f;
        if (ctx_.global.json) {
            f.json_line = task.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
        } else {
            f.stdout_path = std::move(s.stdout_path);
            f.stderr_path = std::move(s.stderr_path);
        }
        if (o_.unordered) {
            emit(f);
            return;
        }
        reorder_.add(seq, std::move(f));
        while (auto next = reorder_.pop()) {
            emit(*next);
        }
    }

    void halt() {
        halted_ = true;
        // now: stop everything; soon: cancel what has not started, let the running ones finish.
        force_cancel_ = halt_.when == map::HaltPolicy::When::now;
        cancel_all(force_cancel_);
    }

    void interrupt(int signo) {
        if (stop_signal_ != 0) {
            // A second one: stop waiting for the tasks to go (they are being stopped all the same).
            clear_progress();
            std::_Exit(128 + stop_signal_);
        }
        stop_signal_ = signo;
        force_cancel_ = true;
        cancel_all(true);
    }

    void cancel_all(bool force) {
        if (!client_ || seq_of_.empty()) {
            return;
        }
        json ids = json::array();
        for (const auto& [id, seq] : seq_of_) {
            ids.push_back(id);
        }
        try {
            client_->send("task.cancel", {{"ids", ids}, {"force", force}});
        } catch (const CliError&) {
            // The connection is gone: nothing more to do from here.
        }
    }

    void emit(const Finished& f) {
        if (broken_pipe_) {
            return;
        }
        clear_progress();
        if (!f.json_line.empty()) {
            write_or_stop(1, f.json_line);
            return;
        }
        copy_file(f.stdout_path, 1);
        copy_file(f.stderr_path, 2);
    }

    // Copies the file at PATH to FD in chunks (an output may be large); a missing file (a task that never
    // started) is no output.
    void copy_file(const std::string& path, int fd) {
        // Most outputs are empty: one stat(2) instead of open, read and close.
        struct stat st {};
        if (path.empty() || ::stat(path.c_str(), &st) != 0 || st.st_size == 0) {
            return;
        }
        int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (in < 0) {
            return;
        }
        common::UniqueFd guard(in);
        static char buf[64 * 1024];
        for (;;) {
            auto n = common::read_once(in, buf, sizeof buf);
            if (!n || *n == 0) {
                return;
            }
            if (!write_or_stop(fd, std::string_view(buf, *n))) {
                return;
            }
        }
    }

    bool write_or_stop(int fd, std::string_view bytes) {
        if (auto r = common::write_all(fd, bytes); !r) {
            if (fd == 1) {
                stdout_closed();
            }
            return false;
        }
        return true;
    }

    // Nobody reads the results any more: stop the map as Ctrl-C would, and exit 128+SIGPIPE.
    void stdout_closed() {
        if (broken_pipe_) {
            return;
        }
        broken_pipe_ = true;
        if (stop_signal_ == 0) {
            stop_signal_ = SIGPIPE;
        }
        force_cancel_ = true;
        cancel_all(true);
    }

    void write_joblog(const std::string& line) {
        if (std::fputs(line.c_str(), joblog_) < 0 || std::fflush(joblog_) != 0) {
            throw CliError(exit_code::mpctl_failed,
                           "--joblog: cannot write " + o_.joblog + ": " + std::strerror(errno));
        }
    }

    void draw_progress(bool force) {
        if (!progress_) {
            return;
        }
        auto now = std::chrono::steady_clock::now();
        if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) {
            return;
        }
        last_draw_ = now;
        drawn_ = true;
        double elapsed = std::chrono::duration<double>(now - started_).count();
        size_t width = 80;
        winsize ws{};
        if (::ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
            width = ws.ws_col - 1;
        }
        std::optional<size_t> total;
        if (source_.at_eof()) {
            // Tasks, not items: with --chunksize a task takes several.
            size_t chunk = static_cast<size_t>(std::max(1, o_.chunksize));
            total = (*source_.total() + chunk - 1) / chunk;
        }
        write_out(2, "\r" + map::progress_line(done_, total, elapsed, width) + "\033[K");
        line_shown_ = true;
    }

    void clear_progress() {
        if (line_shown_) {
            write_out(2, "\r\033[K");
            line_shown_ = false;
            drawn_ = false;
        }
    }

    AppContext& ctx_;
    int signal_fd_ = -1;
    const MapOptions& o_;
    map::ItemSource source_ = map::ItemSource::from_words({});
    std::optional<map::CommandTemplate> template_;
    map::HaltPolicy halt_;
    TaskRequest defaults_;
    std::string defaults_text_;
    bool own_pool_ = true;
    std::string pool_;
    std::optional<Client> client_;
    size_t jobs_ = 1;
    size_t window_ = 1;

    std::vector<std::string> chunk_;  // items of the next task, while a chunk fills
    uint64_t next_seq_ = 0;           // the next task's place in input order
    int64_t batch_id_ = 0;            // the task.submit_batch in flight (0: none)
    uint64_t batch_first_seq_ = 0;
    size_t batch_count_ = 0;
    size_t inflight_ = 0;                           // submitted (or being submitted), not finished
    std::unordered_map<int64_t, uint64_t> seq_of_;  // task id -> seq, while unfinished
    map::Reorder<Finished> reorder_;
    FirstUnsuccessful first_;
    size_t done_ = 0;
    size_t failures_ = 0;
    bool halted_ = false;
    bool force_cancel_ = false;
    int stop_signal_ = 0;
    bool broken_pipe_ = false;
    bool stdout_is_pipe_ = false;

    std::FILE* joblog_ = nullptr;
    bool progress_ = false;
    bool drawn_ = false;
    bool line_shown_ = false;
    std::chrono::steady_clock::time_point started_;
    std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace

void add_map_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    (void)only;  // a single subcommand
    auto* sub = app.add_subcommand("map", "Run a command once per item, in parallel (Pool.map, xargs -P)");
    auto o = std::make_shared<MapOptions>();
    sub->add_option("-j,--jobs", o->jobs, "At most N tasks of this map at once (default: the pool's size)")
        ->check(CLI::Range(1, 100000));
    sub->add_flag("--unordered", o->unordered, "Print results in completion order (default: input order)");
    sub->add_option("--chunksize", o->chunksize, "Up to N items per task, appended as arguments")
        ->check(CLI::Range(1, 100000));
    sub->add_option("--halt", o->halt, "now,fail=N: stop all after N failures; soon,fail=N: start no more");
    sub->add_option("--joblog", o->joblog, "Write one TSV line per finished task to FILE");
    sub->add_option("--colsep", o->colsep,
                    "Split items into columns {1} {2}... at SEP (default: whitespace)");
    sub->add_flag("--progress", o->progress, "Show a progress bar on stderr even when it is not a terminal");
    sub->add_flag("--no-progress", o->no_progress, "Never show the progress bar");
    add_task_options(sub, o->task);
    sub->prefix_command();
    sub->fallthrough(false);  // its words belong to the command, not to the root app
    add_global_options(*sub, ctx.global);
    sub->footer(
        "Items come after ::: or one per line of stdin; {} is the item, {1} {2}... its columns, and without "
        "a placeholder the item is appended.\nExample: mpctl map -j4 -- gzip -k ::: a.txt b.txt\n"
        "         ls *.wav | mpctl map --unordered -- flac {}");
    sub->callback([&ctx, sub, o] {
        auto words = command_words(sub, ctx);
        ctx.action = [&ctx, o, words] {
            MapRun run(ctx, *o, words);
            return run.run();
        };
    });
}

}  // namespace mpctl::cli
