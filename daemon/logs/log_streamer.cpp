#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <spdlog/spdlog.h>

#include <mpctl/common/base64.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/logs/log_streamer.hpp>
#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/daemon/server/session.hpp>
#include <mpctl/daemon/tasks/scheduler.hpp>
#include <mpctl/daemon/tasks/status_view.hpp>

namespace mpctl::daemon {

namespace {
// 96 KiB of output is 128 KiB of base64: large enough to stream fast, small enough to interleave streams.
constexpr size_t k_chunk = 96 * 1024;
// How far back logs --tail looks for line starts (a long line's tail is cut there).
constexpr uint64_t k_tail_scan = 16u << 20;
}  // namespace

uint64_t LogStreamer::tail_offset(int fd, uint64_t lines, uint64_t limit) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return 0;
    }
    uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(st.st_size), limit);
    if (lines == 0) {
        return end;
    }
    // Backwards from the end, counting newlines; a newline that ends the file does not start a line. This
    // runs on the loop: a file with few newlines is searched no further back than k_tail_scan.
    char chunk[16 * 1024];
    uint64_t pos = end;
    uint64_t seen = 0;
    uint64_t floor = end > k_tail_scan ? end - k_tail_scan : 0;
    while (pos > floor) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof chunk, pos - floor));
        ssize_t got = ::pread(fd, chunk, n, static_cast<off_t>(pos - n));
        if (got != static_cast<ssize_t>(n)) {
            return 0;
        }
        for (size_t i = n; i-- > 0;) {
            if (chunk[i] == '\n' && !(pos == end && i == n - 1)) {
                if (++seen == lines) {
                    return pos - n + i + 1;
                }
            }
        }
        pos -= n;
    }
    return floor;
}

LogStreamer::LogStreamer(asio::io_context& io, const Scheduler& tasks, FutureTable& futures,
                         const StatusView& view)
    : io_(io), tasks_(tasks), futures_(futures), view_(view), buffer_(k_chunk) {
    int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd < 0) {
        spdlog::error("inotify_init1: {}; logs --follow will only see output when tasks finish",
                      std::strerror(errno));
        return;
    }
    inotify_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
}

LogStreamer::~LogStreamer() {
    if (inotify_) {
        std::error_code ignored;
        inotify_->close(ignored);
    }
}

void LogStreamer::start(const std::shared_ptr<Responder>& responder, const Request& request) {
    uint64_t id = next_id_++;
    Follower f;
    f.id = id;
    f.task_id = request.task_id;
    f.responder = responder;
    f.follow = request.follow;
    const Task* task = tasks_.find(request.task_id);
    if (task == nullptr) {
        responder->error(proto::ErrorCode::unknown_id, "no task " + std::to_string(request.task_id));
        return;
    }
    f.tail_lines = request.tail_lines;
    f.limit = tasks_.max_output(*task);
    f.want_stdout = request.want_stdout;
    f.want_stderr = request.want_stderr;
    f.stages = task->spec.pipeline().size();
    f.stage = request.stage;
    f.only = request.attempt;
    if (request.from) {
        f.offsets = true;
        f.resume = *request.from;
    }
    if (f.only) {
        f.last_attempt = *f.only - 1;
    } else if (!f.resume.empty()) {
        // A resumed stream goes on from the earliest attempt the client had bytes of; a tail it asked for
        // the first time was taken then.
        auto earliest = std::min_element(f.resume.begin(), f.resume.end(),
                                         [](const auto& a, const auto& b) { return a.attempt < b.attempt; });
        f.last_attempt = earliest->attempt - 1;
        f.tail_lines.reset();
    } else if (f.tail_lines) {
        f.last_attempt = std::max(task->attempts, 1) - 1;  // a tail is the latest attempt's
    }
    add_attempts(f, task);
    if (f.follow && !task->finished()) {
        // Each start of an attempt brings new files; the finish lets the stream drain and end.
        auto wake = [this, id](const Task&) {
            pump(id);
        };
        f.watch = futures_.watch({request.task_id}, wake, wake);
    }
    followers_.emplace(id, std::move(f));
    responder->on_disconnect([this, id] { finish(id); });
    pump(id);
}

void LogStreamer::add_attempts(Follower& f, const Task* task) {
    int latest = std::max(task != nullptr ? task->attempts : 0, 1);
    if (f.only) {
        latest = std::min(latest, *f.only);
    }
    for (int attempt = f.last_attempt + 1; attempt <= latest; ++attempt) {
        bool from_tail = f.tail_lines.has_value() && f.last_attempt == 0;
        auto add = [&](const char* stream, std::optional<size_t> stage) {
            Source src;
            src.stream = stream;
            src.stage = stage;
            src.attempt = attempt;
            src.from_tail = from_tail;
            f.sources.push_back(std::move(src));
        };
        if (f.want_stdout) {
            add("stdout", std::nullopt);
        }
        for (size_t i = 0; f.want_stderr && i < f.stages; ++i) {
            if (!f.stage || *f.stage == i) {
                add("stderr", i);
            }
        }
        if (f.want_stderr && f.stages == 0) {
            add("stderr", std::nullopt);
        }
        f.last_attempt = attempt;
    }
}

void LogStreamer::open_sources(Follower& f, const Task& task) {
    const OutputLayout& outputs = view_.outputs();
    for (auto& src : f.sources) {
        if (src.fd || src.done) {
            continue;
        }
        // The latest attempt's files have the live names; an earlier one's were put aside.
        int named = src.attempt < task.attempts ? src.attempt : 0;
        if (!src.stage) {
            OutputPaths p = outputs.paths(f.task_id, named);
            src.path = src.stream == "stdout" ? p.stdout_path : p.stderr_path;
        } else {
            src.path = outputs.stage_stderr_path(f.task_id, *src.stage, named);
        }
        auto fd = common::open_cloexec(src.path, O_RDONLY);
        if (!fd && fd.error().err != ENOENT) {
            // Out of descriptors, say: an answer now, not a stream that stays silent. (A file that is not
            // there yet is ordinary: the task has not written it.)
            throw proto::RequestError(proto::ErrorCode::io_error, fd.error().message());
        }
        if (!fd && src.attempt < task.attempts) {
            src.done = true;  // an attempt that is over left no file (a start that failed early)
            continue;
        }
        if (fd) {
            src.fd = std::move(*fd);
            src.offset = start_offset(f, src);
        }
        if (f.follow && src.fd && src.watch < 0 && src.attempt == task.attempts && !task.finished()) {
            add_watch(src, f.id);
        }
    }
}

uint64_t LogStreamer::start_offset(const Follower& f, const Source& src) {
    for (const auto& r : f.resume) {
        if (r.attempt == src.attempt && r.stream == src.stream && r.stage == src.stage) {
            return r.offset;
        }
    }
    return src.from_tail ? tail_offset(src.fd.get(), *f.tail_lines, f.limit) : 0;
}

void LogStreamer::add_watch(Source& source, uint64_t follower_id) {
    if (!inotify_) {
        return;
    }
    int wd = ::inotify_add_watch(inotify_->native_handle(), source.path.c_str(), IN_MODIFY);
    if (wd < 0) {
        spdlog::warn("inotify_add_watch {}: {}", source.path, std::strerror(errno));
        return;
    }
    source.watch = wd;
    by_watch_[wd].push_back(follower_id);
    if (!inotify_waiting_) {
        read_events();
    }
}

void LogStreamer::remove_watch(Source& source, uint64_t follower_id) {
    if (source.watch < 0) {
        return;
    }
    auto it = by_watch_.find(source.watch);
    if (it != by_watch_.end()) {
        std::erase(it->second, follower_id);
        if (it->second.empty()) {
            // The same file watched twice yields the same wd: remove it only when nobody uses it.
            ::inotify_rm_watch(inotify_->native_handle(), source.watch);
            by_watch_.erase(it);
        }
    }
    source.watch = -1;
}

void LogStreamer::read_events() {
    if (!inotify_) {
        return;
    }
    inotify_waiting_ = true;
    inotify_->async_wait(asio::posix::stream_descriptor::wait_read, [this](const std::error_code& ec) {
        inotify_waiting_ = false;
        if (ec) {
            if (ec != asio::error::operation_aborted) {
                spdlog::error("inotify: {}; logs --follow will only see output when tasks finish",
                              ec.message());
            }
            return;
        }
        alignas(struct inotify_event) char buf[16 * 1024];
        std::vector<uint64_t> woken;
        for (;;) {
            ssize_t n = ::read(inotify_->native_handle(), buf, sizeof buf);
            if (n <= 0) {
                break;
            }
            for (char* p = buf; p < buf + n;) {
                auto* ev = reinterpret_cast<struct inotify_event*>(p);
                auto it = by_watch_.find(ev->wd);
                if (it != by_watch_.end()) {
                    woken.insert(woken.end(), it->second.begin(), it->second.end());
                }
                p += sizeof(struct inotify_event) + ev->len;
            }
        }
        std::sort(woken.begin(), woken.end());
        woken.erase(std::unique(woken.begin(), woken.end()), woken.end());
        for (uint64_t id : woken) {
            pump(id);
        }
        if (!by_watch_.empty()) {
            read_events();
        }
    });
}

void LogStreamer::pump(uint64_t follower_id) {
    auto it = followers_.find(follower_id);
    if (it == followers_.end()) {
        return;
    }
    auto responder = it->second.responder;
    guarded(responder, [&] { pump_follower(it->second); });
    if (responder->answered()) {
        finish(follower_id);  // done, or an error answered it
    }
}

void LogStreamer::pump_follower(Follower& f) {
    const uint64_t follower_id = f.id;
    if (f.paused) {
        return;
    }
    auto session = f.responder->session();
    if (!session || session->closed()) {
        finish(follower_id);
        return;
    }
    const Task* task = tasks_.find(f.task_id);
    bool started = task != nullptr && (task->attempts > 0 || task->finished());
    if (started) {
        add_attempts(f, task);
        open_sources(f, *task);
    }
    for (auto& src : f.sources) {
        if (!src.fd) {
            continue;
        }
        for (;;) {
            if (session->queued_bytes() > Session::k_high_water) {
                f.paused = true;
                session->when_drained([this, follower_id] {
                    auto again = followers_.find(follower_id);
                    if (again != followers_.end()) {
                        again->second.paused = false;
                        asio::post(io_, [this, follower_id] { pump(follower_id); });
                    }
                });
                return;
            }
            if (src.offset >= f.limit) {
                break;  // past max_output: what is there is about to be cut
            }
            size_t want = static_cast<size_t>(std::min<uint64_t>(buffer_.size(), f.limit - src.offset));
            ssize_t n = ::pread(src.fd.get(), buffer_.data(), want, static_cast<off_t>(src.offset));
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                spdlog::warn("read {}: {}", src.path, std::strerror(errno));
                break;
            }
            if (n == 0) {
                break;
            }
            uint64_t at = src.offset;
            src.offset += static_cast<uint64_t>(n);
            // Built by hand: base64 needs no escaping, and this avoids copying megabytes through json.
            std::string line = R"({"jsonrpc":"2.0","method":"task.output","params":{"id":)";
            line += std::to_string(f.task_id);
            line += R"(,"attempt":)";
            line += std::to_string(src.attempt);
            line += R"(,"stream":")";
            line += src.stream;
            line += '"';
            if (src.stage) {
                line += R"(,"stage":)";
                line += std::to_string(*src.stage);
            }
            if (f.offsets) {
                line += R"(,"offset":)";
                line += std::to_string(at);
            }
            line += R"(,"data":")";
            line += common::base64_encode(std::string_view(buffer_.data(), static_cast<size_t>(n)));
            line += "\"}}\n";
            session->send(std::move(line));
        }
        if (task != nullptr && src.attempt < task->attempts) {
            // Over (a later attempt has started): read to its end, nothing more will come.
            remove_watch(src, follower_id);
            src.fd.reset();
            src.done = true;
        }
    }
    bool done = task == nullptr || !f.follow || task->finished() || (f.only && task->attempts > *f.only);
    if (done) {
        f.responder->result(
            {{"task", task != nullptr ? proto::to_json(view_.status(*task)) : nlohmann::json(nullptr)}});
    }
}

void LogStreamer::finish(uint64_t follower_id) {
    auto it = followers_.find(follower_id);
    if (it == followers_.end()) {
        return;
    }
    for (auto& src : it->second.sources) {
        remove_watch(src, follower_id);
    }
    futures_.unwatch(it->second.watch);
    followers_.erase(it);
}

}  // namespace mpctl::daemon
