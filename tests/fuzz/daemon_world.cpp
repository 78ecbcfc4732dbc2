#include "daemon_world.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/socket.h>
#include <tuple>
#include <unistd.h>

#include <asio/local/stream_protocol.hpp>

#include <mpctl/common/shm.hpp>
#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/manager_context.hpp>
#include <mpctl/daemon/commands/pool_context.hpp>
#include <mpctl/daemon/commands/shm_context.hpp>
#include <mpctl/daemon/commands/sync_context.hpp>
#include <mpctl/daemon/commands/task_context.hpp>
#include <mpctl/daemon/server/session.hpp>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define MPCTL_FUZZ_ASAN 1
#endif
#endif

namespace mpctl::fuzz {

using daemon::Scheduler;
using daemon::TaskState;

namespace {

// Enough for what a request can make to run and retry to its end (each round fires one timer: a retry's
// delay, a timeout, a kill_after); past it the answer the request may still owe is not required.
constexpr int k_max_settle_rounds = 200000;
// A parked wait's own timers: its timeout and its lease's ttl take one each; a lock held outside the daemon
// is tried again every 50 ms at most, so this is the better part of a minute of its time.
constexpr int k_max_own_timer_rounds = 1000;

// Smaller than the config's defaults (16 GiB, 1 GiB), so that a fuzzer's inputs reach the limits, and a
// segment written all over stays small in /dev/shm.
constexpr uint64_t k_shm_max_size = 1 << 20;
constexpr uint64_t k_manager_max_bytes = 1 << 16;

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

// The families whose waits another client answers (a lock's release, a put, a set): nothing in a world of
// one request at a time ever will.
bool waits_for_clients(std::string_view method) {
    for (std::string_view family : {"lock.", "sem.", "event.", "barrier.", "queue.", "kv."}) {
        if (method.starts_with(family)) {
            return true;
        }
    }
    return false;
}

// Segments of fuzz_params processes that are gone (killed by a crash, a timeout, or a -jobs run's end).
void unlink_stale_segments() {
    constexpr std::string_view k_stem = "mpctl-fuzz.";
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(common::shm::k_dir, ec)) {
        std::string name = entry.path().filename().string();
        if (!name.starts_with(k_stem)) {
            continue;
        }
        long pid = std::strtol(name.c_str() + k_stem.size(), nullptr, 10);
        if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
            ::unlink(entry.path().c_str());
        }
    }
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
    size_t leases = 0;
    size_t watched_processes = 0;  // by the leases' pidfds
    std::string sync;              // lock.list, sem.list, event.list and barrier.list, as they answer
    std::string manager;           // queue.list, the dicts (see dicts_made_), the bytes of values, token.list
    std::string segments;          // shm.list, and this process's segments of /dev/shm with their bytes

    bool operator==(const Fingerprint&) const = default;
};

DaemonWorld::DaemonWorld(const daemon::TaskCgroups& cgroups)
    : outputs_(state_dir_.path(), 0), lock_dir_(state_dir_ / "locks"), cgroups_(cgroups) {
    static const bool stale_unlinked = (unlink_stale_segments(), true);
    (void)stale_unlinked;
    std::filesystem::create_directory(lock_dir_);
    auto store = daemon::Store::open(state_dir_ / "mpctld.db", daemon::Durability::normal);
    if (!store) {
        die("cannot open the journal: " + store.error().message());
    }
    store_ = std::move(*store);
    // What main() reads before it builds the Daemon: a new journal's counters, and no rows.
    auto journal = store_->load();
    if (!journal) {
        die("cannot read the journal: " + journal.error().message());
    }
    Scheduler::Options options;
    options.default_workers = 4;
    options.daemon_env = {"PATH=/usr/bin:/bin", "HOME=/nonexistent"};
    options.default_cwd = "/";
    options.max_output = 1 << 20;
    view_ = std::make_unique<daemon::StatusView>(outputs_, options.default_cwd);
    scheduler_ = std::make_unique<Scheduler>(slurm_, timers_, outputs_, events_, std::move(options));
    view_->set_backend_of([this](const std::string& pool) { return scheduler_->backend(pool); });
    output_limits_ = std::make_unique<daemon::OutputLimits>(*scheduler_, timers_);
    // As Daemon subscribes them: the journal first, then waits and followers, output retention, the stop.
    events_.subscribe(*store_);
    events_.subscribe(futures_);
    events_.subscribe(*output_limits_);
    events_.subscribe(*this);
    logs_ = std::make_unique<daemon::LogStreamer>(io_, *scheduler_, futures_, *view_);
    // The tables of the other families, in Daemon's order and from the journal as it makes them.
    locks_ = std::make_unique<daemon::LockTable>(timers_, leases_, *store_, journal->next_lock_token);
    segments_ = std::make_unique<daemon::SegmentRegistry>(leases_, *store_, timers_, k_shm_max_size);
    manager_budget_ = std::make_unique<daemon::ValueBudget>(k_manager_max_bytes);
    queues_ = std::make_unique<daemon::QueueTable>(*store_, timers_, *manager_budget_);
    queues_->restore(std::move(journal->queues));
    dicts_ = std::make_unique<daemon::KvTable>(*store_, timers_, *manager_budget_);
    dicts_->restore(std::move(journal->dicts));
    tokens_ = std::make_unique<daemon::TokenTable>(*store_);
    tokens_->restore(journal->tokens);
    // Every family, as Daemon::register_commands does.
    daemon::TaskContext tasks{io_, *scheduler_, *view_, *store_, futures_, environments_, *logs_, cgroups_};
    daemon::register_task_submit_commands(registry_, tasks);
    daemon::register_task_query_commands(registry_, tasks);
    daemon::register_task_wait_commands(registry_, tasks);
    daemon::register_task_control_commands(registry_, tasks);
    daemon::register_task_remove_commands(registry_, tasks);
    daemon::register_task_logs_command(registry_, tasks);
    daemon::register_pool_commands(registry_, daemon::PoolContext{*scheduler_, *store_, warm_, slurm_});
    daemon::SyncContext sync{*locks_, events_table_, barriers_};
    daemon::register_lock_commands(registry_, sync);
    daemon::register_sync_commands(registry_, sync);
    daemon::register_shm_commands(registry_, daemon::ShmContext{*segments_});
    daemon::ManagerContext manager{*queues_, *dicts_};
    daemon::register_queue_commands(registry_, manager);
    daemon::register_kv_commands(registry_, manager);
    daemon::register_token_commands(registry_, *tokens_);
    daemon::register_daemon_commands(registry_, *this);
    store_->start(io_);
    // As Daemon::run: segments are taken back once the journal is written to.
    segments_->restore(journal->segments);
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
    // As a daemon that stops: the leased segments go before the journal's last commit. The persistent ones
    // a daemon keeps go too: the next world makes its own.
    segments_->unlink_leased();
    unlink_segments(shm_prefix());
    store_->stop();
}

std::string DaemonWorld::shm_prefix() {
    return "mpctl-fuzz." + std::to_string(::getpid()) + ".";
}

void DaemonWorld::unlink_segments(const std::string& prefix) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(common::shm::k_dir, ec)) {
        if (entry.path().filename().string().starts_with(prefix)) {
            ::unlink(entry.path().c_str());
        }
    }
}

std::optional<std::string> DaemonWorld::confine(std::string_view method, std::string_view params) const {
    bool lock = method.starts_with("lock.");
    if (!lock && !method.starts_with("shm.")) {
        return std::string(params);
    }
    nlohmann::json p = nlohmann::json::parse(params, nullptr, false);
    if (!p.is_object()) {
        return std::nullopt;
    }
    auto it = p.find(lock ? "path" : "name");
    if (it != p.end() && it->is_string()) {
        const auto& given = it->get_ref<const std::string&>();
        if (lock && given.starts_with('/')) {
            *it = lock_dir_ + std::filesystem::path(given).lexically_normal().string();
        } else if (!lock) {
            if (auto name = common::shm::normalize_name(given)) {
                *it = shm_prefix() + *name;
            }
        }
    }
    // Written again even if nothing moved: the daemon then reads the one object this read (of two
    // "path"s, one is not taken for the other).
    return p.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
    // Something in every table of the other families, for their requests to find: locks and a semaphore
    // unit held by this process (a process lease: it outlives every connection, and sets no timer), an
    // event set, queues (durable, in memory, and one full, where a put waits), a dict, a token, and a
    // segment and a ShareableList that outlive their requests.
    auto request = [this](const char* method, nlohmann::json params) {
        request_or_die(
            nlohmann::json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", std::move(params)}}
                .dump());
    };
    request("lock.acquire", {{"path", lock_dir_ + "/held"}});
    request("lock.acquire", {{"path", lock_dir_ + "/shared"}, {"shared", true}});
    request("sem.acquire", {{"name", "sem"}, {"limit", 2}});
    request("event.set", {{"name", "ready"}});
    request("queue.put", {{"name", "jobs"}, {"values", {1, "two", {{"three", 3}}}}});
    request("queue.put", {{"name", "mem"}, {"values", {"x"}}, {"memory", true}});
    request("queue.put", {{"name", "full"}, {"values", {1}}, {"maxsize", 1}});
    request("kv.set", {{"name", "config"}, {"key", "k"}, {"value", {{"a", 1}}}});
    request("kv.set", {{"name", "config"}, {"key", "n"}, {"value", 2}});
    dicts_made_ = {"config"};
    request("token.create", {{"name", "ci"}, {"methods", {"queue.*", "kv.get"}}});
    request("shm.create", {{"name", shm_prefix() + "seg"}, {"size", 4096}, {"persist", true}});
    request(
        "shm.list_create",
        {{"name", shm_prefix() + "list"}, {"values", {1, 2.5, "text", true, nullptr}}, {"persist", true}});
    Leased l = leased();
    if (client_waits() != 0 || l.all != leases_.size() || l.to_connections != 0 || locks_->held() != 3) {
        die("the world's locks and leases are not as it was built with");
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
    daemon::TimerId own_timers = timers_.next_id();
    const void* session_memory = session.lock().get();
    std::string method;
    last_dict_.reset();
    if (auto request = nlohmann::json::parse(line, nullptr, false); request.is_object()) {
        if (auto m = request.find("method"); m != request.end() && m->is_string()) {
            method = m->get<std::string>();
        }
        auto p = request.find("params");
        if (method.starts_with("kv.") && p != request.end() && p->is_object()) {
            if (auto name = p->find("name"); name != p->end() && name->is_string()) {
                last_dict_ = name->get<std::string>();
            }
        }
    }
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
    if (!answered(out.received) && waits_for_clients(method)) {
        // What it waits for only another client does, and none will. Only its own timers run out (its
        // timeout, its lease's ttl): the world's tasks are not played out for it, which would change the
        // world for nothing. The answer is owed if it did park (a kv.watch streams until its timeout), and
        // what is parked the close below must drop.
        run_own_timers(own_timers, client.get(), out.received);
        out.settled = answered(out.received) || (client_waits() == 0 && method != "kv.watch");
    } else if (!answered(out.received)) {
        // A request that parked (a wait, a follower, a stop) answers once its tasks are done: play them out.
        out.settled = settle(client.get(), out.received);
    }
    client.reset();
    run_until_idle(-1, out.received);
    out.watches_left = futures_.watch_count();
    out.followers_left = logs_->active();
    out.session_left = !session.expired();
    session.reset();
#ifdef MPCTL_FUZZ_ASAN
    // The session was made with make_shared: its memory is freed (and poisoned, in ASan's quarantine) once
    // nothing refers to it, weakly either. A Responder or a lease left behind still does.
    out.session_referred = !out.session_left && __asan_address_is_poisoned(session_memory) == 0;
#else
    (void)session_memory;
#endif
    out.client_waits_left = client_waits();
    Leased l = leased();
    out.connection_leases_left = l.to_connections;
    out.stray_leases = std::max(l.all, leases_.size()) - std::min(l.all, leases_.size()) + l.unleased;
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

void DaemonWorld::run_own_timers(daemon::TimerId since, int client_fd, std::string& received) {
    for (int round = 0; round < k_max_own_timer_rounds && !answered(received); ++round) {
        if (!timers_.fire_next(since)) {
            return;
        }
        run_until_idle(client_fd, received);
    }
}

size_t DaemonWorld::client_waits() const {
    size_t n = 0;
    for (const auto& lock : locks_->list(std::nullopt)) {
        n += lock["waiters"].size();
    }
    for (const auto& sem : locks_->list_semaphores(std::nullopt)) {
        n += sem["waiters"].size();
    }
    for (const auto& event : events_table_.list(std::nullopt)) {
        n += event["waiters"].get<size_t>();
    }
    for (const auto& barrier : barriers_.list(std::nullopt)) {
        n += barrier["waiting"].size();
    }
    for (const auto& queue : queues_->list()) {
        n += queue["getters"].get<size_t>() + queue["putters"].get<size_t>();
    }
    return n;
}

DaemonWorld::Leased DaemonWorld::leased() const {
    Leased l;
    auto count = [&l](const nlohmann::json& lease, bool required) {
        if (lease.is_null()) {
            l.unleased += required ? 1 : 0;
            return;
        }
        ++l.all;
        l.to_connections += lease["kind"] == "connection" ? 1 : 0;
    };
    for (const auto& locks : {locks_->list(std::nullopt), locks_->list_semaphores(std::nullopt)}) {
        for (const auto& lock : locks) {
            for (const char* line : {"holders", "waiters"}) {
                for (const auto& h : lock[line]) {
                    count(h["lease"], true);
                }
            }
        }
    }
    for (const auto& segment : segments_->list(false)) {
        count(segment["lease"], false);  // none: made with persist
    }
    return l;
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
    f.leases = leases_.size();
    f.watched_processes = leases_.watched_processes();
    f.sync = locks_->list(std::nullopt).dump() + locks_->list_semaphores(std::nullopt).dump() +
             events_table_.list(std::nullopt).dump() + barriers_.list(std::nullopt).dump();
    f.manager = queues_->list().dump() + std::to_string(manager_budget_->used()) + tokens_->list().dump();
    std::vector<std::string> dicts = dicts_made_;
    if (last_dict_ && std::find(dicts.begin(), dicts.end(), *last_dict_) == dicts.end()) {
        dicts.push_back(*last_dict_);
    }
    for (const std::string& name : dicts) {
        // One made since the world was built has a version (a dict that was only watched has none).
        if (std::string text = dicts_->list(name); !text.ends_with(R"(,"version":0,"entries":[]})")) {
            f.manager += text;
        }
    }
    f.segments = segments_->list(false).dump();
    std::error_code ec;
    std::vector<std::filesystem::path> own;
    for (const auto& entry : std::filesystem::directory_iterator(common::shm::k_dir, ec)) {
        if (entry.path().filename().string().starts_with(shm_prefix())) {
            own.push_back(entry.path());
        }
    }
    std::sort(own.begin(), own.end());
    for (const auto& path : own) {
        std::ifstream in(path, std::ios::binary);
        f.segments += path.filename().string() + ":" +
                      std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()) +
                      "\n";
    }
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
