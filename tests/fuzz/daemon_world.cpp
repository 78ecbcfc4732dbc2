#include "daemon_world.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/socket.h>
#include <tuple>
#include <unistd.h>

#include <asio/local/stream_protocol.hpp>

#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/pool_context.hpp>
#include <mpctl/daemon/commands/task_context.hpp>
#include <mpctl/daemon/server/session.hpp>

namespace mpctl::fuzz {

using daemon::Scheduler;
using daemon::TaskState;

namespace {

// Enough for what a request can make to run and retry to its end (each round fires one timer: a retry's
// delay, a timeout, a kill_after); past it the answer the request may still owe is not required.
constexpr int k_max_settle_rounds = 200000;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "fuzz_params: %s\n", what.c_str());
    std::abort();
}

// Whether RECEIVED holds an answer, not only notifications: the daemon writes every answer's line with
// this prefix (proto::encode_*_line), and a notification has no id. A cheap look; fuzz_params reads every
// line in full afterwards.
bool answered(const std::string& received) {
    constexpr std::string_view k_answer = R"({"jsonrpc":"2.0","id":)";
    for (size_t begin = 0; begin < received.size();) {
        if (std::string_view(received).substr(begin).starts_with(k_answer)) {
            return true;
        }
        size_t end = received.find('\n', begin);
        if (end == std::string::npos) {
            break;
        }
        begin = end + 1;
    }
    return false;
}

}  // namespace

// What a request may change of the world; the same fingerprint, the same world as far as any next request
// can tell.
struct DaemonWorld::Fingerprint {
    int64_t next_id = 0;
    std::vector<std::tuple<int64_t, TaskState, int, bool>> tasks;  // id, state, attempts, durable
    std::vector<std::tuple<std::string, int, int, int, int, bool, std::string>> pools;  // warm: described
    bool stopping = false;
    size_t live_processes = 0;
    size_t timers = 0;

    bool operator==(const Fingerprint&) const = default;
};

DaemonWorld::DaemonWorld(const daemon::TaskCgroups& cgroups)
    : outputs_(state_dir_.path(), 0), cgroups_(cgroups) {
    auto store = daemon::Store::open(state_dir_ / "mpctld.db", daemon::Durability::normal);
    if (!store) {
        die("cannot open the journal: " + store.error().message());
    }
    store_ = std::move(*store);
    Scheduler::Options options;
    options.default_workers = 4;
    options.daemon_env = {"PATH=/usr/bin:/bin", "HOME=/nonexistent"};
    options.default_cwd = "/";
    options.max_output = 1 << 20;
    view_ = std::make_unique<daemon::StatusView>(outputs_, options.default_cwd);
    scheduler_ = std::make_unique<Scheduler>(warm_, timers_, outputs_, events_, std::move(options));
    output_limits_ = std::make_unique<daemon::OutputLimits>(*scheduler_, timers_);
    // As Daemon subscribes them: the journal first, then waits and followers, output retention, the stop.
    events_.subscribe(*store_);
    events_.subscribe(futures_);
    events_.subscribe(*output_limits_);
    events_.subscribe(*this);
    logs_ = std::make_unique<daemon::LogStreamer>(io_, *scheduler_, futures_, *view_);
    daemon::TaskContext tasks{io_, *scheduler_, *view_, *store_, futures_, environments_, *logs_, cgroups_};
    daemon::register_task_submit_commands(registry_, tasks);
    daemon::register_task_query_commands(registry_, tasks);
    daemon::register_task_wait_commands(registry_, tasks);
    daemon::register_task_control_commands(registry_, tasks);
    daemon::register_task_remove_commands(registry_, tasks);
    daemon::register_task_logs_command(registry_, tasks);
    daemon::register_pool_commands(registry_, daemon::PoolContext{*scheduler_, *store_, warm_});
    daemon::register_daemon_commands(registry_, *this);
    store_->start(io_);
    scheduler_->resume();
    populate();
    initial_ = std::make_unique<Fingerprint>(fingerprint());
    open_fds_at_start_ = open_fds();
}

size_t DaemonWorld::open_fds() {
    // Not the journal's: the checkpointer opens its connection on its own thread, whenever it gets to it.
    // Nor pipes: nothing here makes one (processes are fake), but the sanitizers' symbolizer, started the
    // first time libFuzzer names a newly covered function, talks through two.
    size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        std::string target = std::filesystem::read_symlink(entry.path(), ec).string();
        if (!target.ends_with("/mpctld.db") && !target.ends_with("/mpctld.db-wal") &&
            !target.ends_with("/mpctld.db-shm") && !target.starts_with("pipe:")) {
            ++n;
        }
    }
    return n;
}

DaemonWorld::~DaemonWorld() {
    store_->stop();
}

void DaemonWorld::request_or_die(const std::string& line) {
    Exchange e = exchange(line);
    if (!answered(e.received) || e.received.find(R"("result":)") == std::string::npos) {
        die("the world could not be built: " + line + " got " + e.received);
    }
}

void DaemonWorld::populate() {
    // 1 succeeded, 2 failed: played out at once.
    request_or_die(R"({"jsonrpc":"2.0","id":1,"method":"pool.set","params":{"name":"one","workers":1}})");
    request_or_die(
        R"({"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["echo","one","two"],"name":"first","labels":{"team":"infra"},"cwd":"/"}})");
    request_or_die(R"({"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["false"]}})");
    std::string ignored;
    if (!settle(-1, ignored)) {
        die("the world's first tasks did not finish");
    }
    // 3 and 4 (a pipeline of three) run in the default pool, 5 waits for 3, 6 runs in pool "one", where 7
    // and 9 queue behind it; 8 was cancelled there; 10 failed to spawn.
    request_or_die(
        R"({"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["sleep","100"],"timeout":3600,"kill_after":5,"retries":2,"retry_delay":5,"labels":{"team":"infra","kind":"slow"}}})");
    request_or_die(
        R"({"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"pipeline":[["producer"],["filter","-v"],["consumer"]],"name":"pipe"}})");
    request_or_die(
        R"({"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["true"],"after":[3]}})");
    request_or_die(
        R"({"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["sleep","1"],"pool":"one"}})");
    request_or_die(
        R"({"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["true"],"pool":"one","priority":5}})");
    request_or_die(
        R"({"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"shell":"true","pool":"one"}})");
    request_or_die(R"({"jsonrpc":"2.0","id":1,"method":"task.cancel","params":{"id":8}})");
    request_or_die(
        R"({"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["cat"],"stdin":"/dev/null","env":{"A":"1"},"pool":"one"}})");
    request_or_die(R"({"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["/nonexistent/x"]}})");
    if (scheduler_->running_count() != 3 || scheduler_->count(TaskState::pending) != 3 ||
        scheduler_->count(TaskState::succeeded) != 1 || scheduler_->count(TaskState::failed) != 2 ||
        scheduler_->count(TaskState::cancelled) != 1) {
        die("the world's tasks are not in the states it was built with");
    }
}

DaemonWorld::Exchange DaemonWorld::exchange(std::string_view line, size_t passed_fds) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        die(std::string("socketpair: ") + std::strerror(errno));
    }
    common::UniqueFd client(fds[1]);
    ::fcntl(client.get(), F_SETFL, O_NONBLOCK);
    asio::local::stream_protocol::socket socket(io_);
    socket.assign(asio::local::stream_protocol(), fds[0]);
    std::weak_ptr<daemon::Session> session;
    {
        auto s = std::make_shared<daemon::Session>(
            std::move(socket), registry_,
            daemon::PeerCredentials{::getpid(), ::getuid(), ::getgid(), nullptr});
        s->start();  // its pending read keeps it alive from here
        session = s;
    }

    Exchange out;
    std::string wire(line);
    wire.push_back('\n');
    std::string_view unsent(wire);
    // The descriptors go with the request's first bytes, as a client passes them (stdin_fd).
    if (passed_fds > 0) {
        std::vector<common::UniqueFd> nulls;
        for (size_t i = 0; i < passed_fds; ++i) {
            nulls.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        }
        std::vector<char> control(CMSG_SPACE(sizeof(int) * passed_fds));
        iovec iov{wire.data(), 1};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * passed_fds);
        for (size_t i = 0; i < passed_fds; ++i) {
            int fd = nulls[i].get();
            std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof fd);
        }
        if (::sendmsg(client.get(), &msg, MSG_NOSIGNAL) != 1) {
            die(std::string("sendmsg with descriptors: ") + std::strerror(errno));
        }
        unsent.remove_prefix(1);
    }
    while (!unsent.empty()) {
        ssize_t n = ::send(client.get(), unsent.data(), unsent.size(), MSG_NOSIGNAL);
        if (n > 0) {
            unsent.remove_prefix(static_cast<size_t>(n));
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            break;  // the daemon closed the connection: what it said is in what it sent
        }
        run_until_idle(client.get(), out.received);
    }
    run_until_idle(client.get(), out.received);
    // A request that parked (a wait, a follower, a stop) answers once its tasks are done: play them out.
    if (!answered(out.received)) {
        out.settled = settle(client.get(), out.received);
    }
    client.reset();
    run_until_idle(-1, out.received);
    out.watches_left = futures_.watch_count();
    out.followers_left = logs_->active();
    out.session_left = !session.expired();
    out.open_fds = open_fds();
    return out;
}

void DaemonWorld::run_until_idle(int client_fd, std::string& received) {
    for (;;) {
        size_t ran = io_.poll();
        size_t got = 0;
        if (client_fd >= 0) {
            char buffer[65536];
            ssize_t n;
            while ((n = ::recv(client_fd, buffer, sizeof buffer, 0)) > 0) {
                received.append(buffer, static_cast<size_t>(n));
                got += static_cast<size_t>(n);
            }
        }
        if (ran == 0 && got == 0) {
            return;
        }
    }
}

bool DaemonWorld::settle(int client_fd, std::string& received) {
    spawner_.settling(true);
    spawner_.end_all();
    bool done = false;
    for (int round = 0; round < k_max_settle_rounds; ++round) {
        run_until_idle(client_fd, received);
        if (scheduler_->running_count() == 0 && spawner_.live() == 0 && timers_.pending() == 0) {
            done = true;
            break;
        }
        timers_.fire_next();
    }
    spawner_.settling(false);
    return done;
}

DaemonWorld::Fingerprint DaemonWorld::fingerprint() const {
    Fingerprint f;
    f.next_id = scheduler_->next_id();
    for (const auto& [id, t] : scheduler_->tasks()) {
        f.tasks.emplace_back(id, t.state, t.attempts, t.durable);
    }
    for (const auto& p : scheduler_->pools()) {
        f.pools.emplace_back(p.name, p.workers, p.running, p.pending, p.waiting, p.transient,
                             warm_.describe(p.name).dump());
    }
    f.stopping = scheduler_->starting_stopped();
    f.live_processes = spawner_.live();
    f.timers = timers_.pending();
    return f;
}

bool DaemonWorld::changed() const {
    return !(fingerprint() == *initial_);
}

void DaemonWorld::request_stop(daemon::StopRequest request) {
    // What Daemon::request_stop asks of the scheduler; the rest of a stop (the listener, the journal, the
    // loop's end) is the daemon's, which a fuzzer cannot let end.
    if (request.responder) {
        stop_waiters_.push_back(request.responder);
    }
    (void)scheduler_->stop(request.cancel_pending, request.now, request.kill_after_s.value_or(10));
    maybe_finish_stop();
}

void DaemonWorld::task_changed(const daemon::Task&) {
    if (scheduler_->starting_stopped()) {
        maybe_finish_stop();
    }
}

void DaemonWorld::maybe_finish_stop() {
    if (scheduler_->running_count() > 0) {
        return;
    }
    for (auto& r : std::exchange(stop_waiters_, {})) {
        r->result({{"stopped", true}});
    }
}

nlohmann::json DaemonWorld::info() {
    return {
        {"pid", ::getpid()},
        {"version", MPCTL_VERSION},
        {"stopping", scheduler_->starting_stopped()},
        {"tasks", scheduler_->counts().by_state_json()},
        {"next_id", scheduler_->next_id()},
        {"workers", scheduler_->pool_workers(proto::k_default_pool)},
        {"state_dir", state_dir_.path()},
    };
}

}  // namespace mpctl::fuzz
