// daemon/warm/WarmPool: a warm pool's workers as a state machine, with the test playing the worker on the
// socket the pool gives it (descriptor 3's other end) and a fake spawner and clock: tasks wait for a hello,
// go out with their three descriptors, end with done; a worker that breaks the protocol is killed and its
// task ends with the kill; max_tasks_per_worker retires a worker; workers that end before their hello back
// off and break the pool; a task ended early ends its worker (WarmSpawner).

#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <iterator>
#include <linux/kcmp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <mpctl/common/base64.hpp>
#include <mpctl/daemon/warm/warm_pool.hpp>
#include <mpctl/daemon/warm/warm_spawner.hpp>
#include <mpctl/proto/json_text.hpp>

#include "scheduler_harness.hpp"
#include "temp_dir.hpp"

using mpctl::daemon::ExitInfo;
using mpctl::daemon::SpawnSpec;
using mpctl::daemon::SpawnStage;
using mpctl::daemon::WarmPool;
using mpctl::daemon::WarmSpawner;
using mpctl::daemon::WorkerSpec;
using mpctl::test::scheduler::FakeSpawner;
using mpctl::test::scheduler::FakeTimers;
using nlohmann::json;

namespace {

// The test's side of a worker's socket; IO is the pool's loop, run while the test waits to hear from it.
struct WorkerEnd {
    int fd = -1;
    asio::io_context* io = nullptr;

    void say(const std::string& line) const {
        std::string text = line + "\n";
        REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    }
    // Says hello, then hears the first task the pool sends: its run object and its descriptors.
    std::pair<json, std::vector<int>> hello_then_run() const {
        say(R"({"hello":{"protocol":1,"pid":1}})");
        auto [line, fds] = hear();
        return {json::parse(line).at("run"), fds};
    }
    // The next line the pool sent (empty at end of file) and the descriptors that came with it.
    std::pair<std::string, std::vector<int>> hear() const {
        std::string line;
        std::vector<int> fds;
        char c = 0;
        for (;;) {
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            pollfd p{fd, POLLIN, 0};
            while (::poll(&p, 1, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
                io->restart();
                io->run_for(std::chrono::milliseconds(5));
            }
            iovec iov{&c, 1};
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
            if (n <= 0) {
                return {line, fds};
            }
            for (cmsghdr* h = CMSG_FIRSTHDR(&msg); h != nullptr; h = CMSG_NXTHDR(&msg, h)) {
                size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < count; ++i) {
                    int got = -1;
                    std::memcpy(&got, CMSG_DATA(h) + i * sizeof(int), sizeof got);
                    fds.push_back(got);
                }
            }
            if (c == '\n') {
                return {line, fds};
            }
            line += c;
        }
    }
};

struct World {
    mpctl::test::TempDir dir;
    asio::io_context io;
    FakeSpawner processes;
    FakeTimers timers;
    std::unique_ptr<WarmPool> pool;
    std::vector<std::optional<mpctl::common::Result<std::vector<int>>>> started;
    std::vector<std::optional<ExitInfo>> exits;

    explicit World(WorkerSpec spec, int slots = 1) {
        pool = std::make_unique<WarmPool>(
            WarmPool::Context{io, processes, timers, dir / "workers.log", {"PATH=/usr/bin:/bin"}}, "warm",
            std::move(spec), slots);
    }
    // Worker N's end of the socket (in spawn order), from the spec the pool spawned it with.
    WorkerEnd worker(size_t n) { return WorkerEnd{processes.processes.at(n).spec.channel_fd.get(), &io}; }
    int worker_pid(size_t n) { return processes.processes.at(n).pid; }
    void pump() {
        io.restart();
        io.poll();
    }
    // Runs the pool's loop until DONE holds, for 30 s at most (a loaded machine); whether it holds.
    bool settle(const std::function<bool()>& done) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            io.restart();
            io.run_for(std::chrono::milliseconds(5));
        }
        return done();
    }
    // Submits task ID (stdout and stderr into files of the temp dir), its spec changed by ADJUST; its index
    // in started/exits.
    size_t run(int64_t id, const std::function<void(SpawnSpec&)>& adjust = {}) {
        SpawnSpec spec;
        SpawnStage stage;
        stage.argv = {"-c", "pass"};
        stage.stderr_path = dir / ("err-" + std::to_string(id));
        spec.stages.push_back(std::move(stage));
        spec.stdout_path = dir / ("out-" + std::to_string(id));
        spec.cwd = "/";
        spec.task = id;
        spec.attempt = 1;
        if (adjust) {
            adjust(spec);
        }
        size_t i = started.size();
        started.emplace_back();
        exits.emplace_back();
        pool->run(
            std::move(spec), [this, i](auto r) { started[i] = std::move(r); },
            [this, i](size_t, ExitInfo info) { exits[i] = info; });
        return i;
    }
};

void close_all(const std::vector<int>& fds) {
    for (int fd : fds) {
        ::close(fd);
    }
}

}  // namespace

TEST_CASE("warm pool: a task waits for the hello, goes out with its three descriptors, ends with done",
          "[unit][warm]") {
    World w(WorkerSpec{{"worker"}, 0, 0});
    REQUIRE(w.processes.processes.size() == 1);
    CHECK(w.processes.processes[0].spec.stages[0].argv == std::vector<std::string>{"worker"});
    size_t t = w.run(7);
    w.pump();
    CHECK_FALSE(w.started[t].has_value());  // no hello yet
    WorkerEnd end = w.worker(0);
    auto [run, fds] = end.hello_then_run();
    w.pump();
    CHECK(run.at("task") == 7);
    CHECK(run.at("kind") == "argv");
    CHECK(run.at("argv") == json::array({"-c", "pass"}));
    CHECK(run.at("env") == json::array());
    for (const char* limit : {"nice", "umask", "rlimits", "cgroup"}) {
        CHECK_FALSE(run.contains(limit));  // only those the task has
    }
    CHECK(fds.size() == 3);
    close_all(fds);
    REQUIRE(w.started[t].has_value());
    CHECK(w.started[t]->value() == std::vector<int>{w.worker_pid(0)});  // the task's pid is the worker's

    end.say(R"({"done":{"task":7,"exit_code":3}})");
    w.settle([&] { return w.exits[t].has_value(); });
    REQUIRE(w.exits[t].has_value());
    CHECK(w.exits[t]->exit_code == 3);
    CHECK(w.pool->describe().at("worker_processes").at(0).at("tasks") == 1);
    // The next task goes to the same worker: no new process.
    size_t t2 = w.run(8);
    auto next = end.hear();
    close_all(next.second);
    w.pump();
    CHECK(json::parse(next.first).at("run").at("task") == 8);
    CHECK(w.started[t2].has_value());
    CHECK(w.processes.processes.size() == 1);
}

TEST_CASE("warm pool: each run carries its own task's environment, shared or not, and /dev/null for stdin",
          "[unit][warm]") {
    World w(WorkerSpec{{"worker"}, 0, 0});
    auto shared = std::make_shared<EnvBlock>(std::vector<std::string>{"A=1", "QUOTE=\"x\\y\"", "LANG=C"});
    auto other = std::make_shared<EnvBlock>(std::vector<std::string>{"B=2"});
    // The same block twice, another, none, the first again: the pool keeps the last one's text.
    std::vector<std::shared_ptr<EnvBlock>> blocks = {shared, shared, other, nullptr, shared};
    WorkerEnd end = w.worker(0);
    end.say(R"({"hello":{"protocol":1,"pid":1}})");
    int first_stdin = -1;
    for (size_t i = 0; i < blocks.size(); ++i) {
        int64_t id = static_cast<int64_t>(10 + i);
        size_t t = w.run(id, [&](SpawnSpec& spec) { spec.env = blocks[i]; });
        auto [line, fds] = end.hear();
        // No stdin: /dev/null (one the pool keeps open), each worker's copy its own descriptor.
        struct stat in {
        }, null{};
        REQUIRE(fds.size() == 3);
        REQUIRE(::fstat(fds[0], &in) == 0);
        REQUIRE(::stat("/dev/null", &null) == 0);
        CHECK((S_ISCHR(in.st_mode) && in.st_rdev == null.st_rdev));
        if (first_stdin < 0) {
            first_stdin = ::fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
        } else {
            // The same open file as the first run's: the pool opened /dev/null once, not once a run.
            long same = ::syscall(SYS_kcmp, ::getpid(), ::getpid(), KCMP_FILE, first_stdin, fds[0]);
            if (same < 0) {
                WARN("kcmp(2) unavailable (" << std::strerror(errno) << "): not compared");
            } else {
                CHECK(same == 0);
            }
        }
        close_all(fds);
        json run = json::parse(line).at("run");
        CHECK(run.at("task") == id);
        CHECK(run.at("env") == (blocks[i] ? json(blocks[i]->entries()) : json::array()));
        end.say(R"({"done":{"task":)" + std::to_string(id) + R"(,"exit_code":0}})");
        REQUIRE(w.settle([&] { return w.exits[t].has_value(); }));
    }
    ::close(first_stdin);
}

TEST_CASE("warm pool: a run's argv, cwd, paths and stdin path keep their bytes, quotes and controls",
          "[unit][warm]") {
    World w(WorkerSpec{{"worker"}, 0, 0});
    const char raw[] = "a\xff\"b\\c\n\x01 \xc3\xa9";  // not UTF-8, a quote, a backslash, controls, UTF-8
    const std::string odd(raw, sizeof raw - 1);
    std::string stdin_file = w.dir / "in";
    { std::ofstream(stdin_file) << "x"; }
    size_t t = w.run(30, [&](SpawnSpec& spec) {
        spec.stages.front().argv = {"-c", odd, ""};
        spec.cwd = "/" + odd;
        spec.stdin_path = stdin_file;
        spec.stdout_path += odd;
        spec.stages.front().stderr_path += odd;
    });
    WorkerEnd end = w.worker(0);
    end.say(R"({"hello":{"protocol":1,"pid":1}})");
    auto [line, fds] = end.hear();
    close_all(fds);
    json run = mpctl::proto::parse_json_text(line).at("run");
    CHECK(run.at("task") == 30);
    CHECK(run.at("attempt") == 1);
    CHECK(run.at("kind") == "argv");
    CHECK(run.at("argv") == json::array({"-c", odd, ""}));
    CHECK(run.at("cwd") == "/" + odd);
    CHECK(run.at("stdin_path") == stdin_file);
    CHECK(run.at("stdout_path") == (w.dir / "out-30") + odd);
    CHECK(run.at("stderr_path") == (w.dir / "err-30") + odd);
    CHECK_FALSE(run.contains("input"));
    CHECK_FALSE(run.contains("nice"));
    CHECK_FALSE(run.contains("cgroup"));
    CHECK(run.at("env") == json::array());
    end.say(R"({"done":{"task":30,"exit_code":0}})");
    REQUIRE(w.settle([&] { return w.exits[t].has_value(); }));
}

TEST_CASE(
    "warm pool: a worker whose hello names keeps_env is sent a run's env only when it is not the one "
    "last sent to it, and a fresh worker is sent it again",
    "[unit][warm]") {
    World w(WorkerSpec{{"worker"}, 6, 0});  // the 7th task goes to a new worker
    auto shared = std::make_shared<EnvBlock>(std::vector<std::string>{"A=1", "LANG=C"});
    auto other = std::make_shared<EnvBlock>(std::vector<std::string>{"B=2"});
    // An equal block that is another object is sent: the pool compares the block, not its entries.
    auto equal = std::make_shared<EnvBlock>(std::vector<std::string>{"B=2"});
    std::vector<std::shared_ptr<EnvBlock>> blocks = {shared, shared, other, equal, nullptr, nullptr, nullptr};
    std::vector<bool> sent = {true, false, true, true, true, false, true};
    const std::string hello = R"({"hello":{"protocol":1,"pid":1,"features":["input","keeps_env"]}})";
    w.worker(0).say(hello);
    for (size_t i = 0; i < blocks.size(); ++i) {
        CAPTURE(i);
        int64_t id = static_cast<int64_t>(20 + i);
        size_t t = w.run(id, [&](SpawnSpec& spec) { spec.env = blocks[i]; });
        size_t n = i < 6 ? 0 : 1;
        if (n == 1) {
            REQUIRE(w.settle([&] { return w.processes.processes.size() == 2; }));
            w.worker(1).say(hello);
        }
        auto [line, fds] = w.worker(n).hear();
        close_all(fds);
        REQUIRE(fds.size() == 3);
        json run = json::parse(line).at("run");
        CHECK(run.at("task") == id);
        CHECK(run.contains("env") == sent[i]);
        if (sent[i]) {
            CHECK(run.at("env") == (blocks[i] ? json(blocks[i]->entries()) : json::array()));
        }
        w.worker(n).say(R"({"done":{"task":)" + std::to_string(id) + R"(,"exit_code":0}})");
        REQUIRE(w.settle([&] { return w.exits[t].has_value(); }));
    }
}

TEST_CASE(
    "warm pool: a task's input comes in its run to a worker whose hello names the feature, else as a "
    "memory file on its stdin",
    "[unit][warm]") {
    const char raw[] = "call\0\xff\xfe bytes\n";  // a NUL and bytes that are not UTF-8
    const std::string bytes(raw, sizeof raw - 1);
    for (bool takes : {true, false}) {
        CAPTURE(takes);
        World w(WorkerSpec{{"worker"}, 0, 0});
        WorkerEnd end = w.worker(0);
        end.say(takes ? R"({"hello":{"protocol":1,"pid":1,"features":["other","input"]}})"
                      : R"({"hello":{"protocol":1,"pid":1,"features":["other"]}})");
        size_t t = w.run(7, [&](SpawnSpec& spec) { spec.input = bytes; });
        auto [line, fds] = end.hear();
        REQUIRE(fds.size() == 3);
        json run = json::parse(line).at("run");
        CHECK(run.at("stdin_path").is_null());
        char link[256] = {};
        REQUIRE(::readlink(("/proc/self/fd/" + std::to_string(fds[0])).c_str(), link, sizeof link - 1) > 0);
        if (takes) {
            CHECK(run.at("input") == mpctl::common::base64_encode(bytes));
            CHECK(std::string(link) == "/dev/null");
        } else {
            CHECK_FALSE(run.contains("input"));
            CHECK(std::string(link).starts_with("/memfd:mpctl-input"));
            std::string read(64, '\0');
            ssize_t n = ::read(fds[0], read.data(), read.size());  // from the start
            REQUIRE(n >= 0);
            read.resize(static_cast<size_t>(n));
            CHECK(read == bytes);
        }
        close_all(fds);
        end.say(R"({"done":{"task":7,"exit_code":0}})");
        REQUIRE(w.settle([&] { return w.exits[t].has_value(); }));
    }
}

TEST_CASE("warm pool: a task's limits go with its run, and its cgroup.procs as a fourth descriptor",
          "[unit][warm]") {
    World w(WorkerSpec{{"worker"}, 0, 0});
    mpctl::test::TempDir cgroup;
    std::string procs = cgroup / "cgroup.procs";
    size_t t = w.run(9, [&](SpawnSpec& spec) {
        spec.nice = 7;
        spec.umask = 027;
        spec.rlimits = {{RLIMIT_NOFILE, 64}, {RLIMIT_CORE, RLIM_INFINITY}};
        spec.cgroup_procs_fd.reset(::open(procs.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    });
    WorkerEnd end = w.worker(0);
    auto [run, fds] = end.hello_then_run();
    w.pump();
    CHECK(run.at("nice") == 7);
    CHECK(run.at("umask") == 027);
    CHECK(run.at("rlimits") == json{{"nofile", 64}, {"core", "unlimited"}});
    CHECK(run.at("cgroup") == true);
    REQUIRE(fds.size() == 4);
    CHECK(::write(fds[3], "0", 1) == 1);  // the worker's child joins the task's cgroup through it
    close_all(fds);
    std::ifstream in(procs);
    std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(written == "0");
    end.say(R"({"done":{"task":9,"exit_code":0}})");
    CHECK(w.settle([&] { return w.exits[t].has_value(); }));
}

TEST_CASE(
    "warm pool: a worker that breaks the protocol is killed, its task ends with the kill, a new one "
    "takes the slot",
    "[unit][warm]") {
    for (const std::string& garbage : std::vector<std::string>{
             "not json", R"({"done":{"task":99,"exit_code":0}})", R"({"done":{"task":7}})", R"({"what":1})",
             R"({"hello":{"protocol":1}})", R"({"done":{"task":7,"exit_code":0,"result":"not base64"}})",
             R"({"done":{"task":7,"exit_code":0,"result":5}})",
             R"({"done":{"task":7,"exit_code":0,"result":")" + std::string(21852, 'A') + R"("}})"}) {
        INFO(garbage);
        World w(WorkerSpec{{"worker"}, 0, 0});
        WorkerEnd end = w.worker(0);
        end.say(R"({"hello":{"protocol":1}})");
        size_t t = w.run(7);
        close_all(end.hear().second);
        end.say(garbage);
        w.settle([&] { return !w.processes.signals_to(w.worker_pid(0)).empty(); });
        CHECK(w.processes.signals_to(w.worker_pid(0)) ==
              std::vector<std::pair<int, int>>{{w.worker_pid(0), SIGKILL}});
        CHECK(end.hear().first.empty());  // its socket is closed
        w.processes.exit(w.worker_pid(0), ExitInfo{std::nullopt, SIGKILL, {}});
        REQUIRE(w.exits[t].has_value());
        CHECK(w.exits[t]->signal == SIGKILL);
        CHECK(w.processes.processes.size() == 2);  // replaced
    }
}

TEST_CASE("warm pool: a done's result, base64 of at most 16 KiB, comes with its task's end", "[unit][warm]") {
    World w(WorkerSpec{{"worker"}, 0, 0});
    WorkerEnd end = w.worker(0);
    end.say(R"({"hello":{"protocol":1}})");
    std::string most(WarmPool::k_max_result_chars, 'A');
    std::vector<std::pair<std::string, std::optional<std::string>>> cases = {
        {R"("aGk=")", "aGk="}, {"\"" + most + "\"", most}, {"null", std::nullopt}, {"", std::nullopt}};
    for (size_t i = 0; i < cases.size(); ++i) {
        const auto& [result, expected] = cases[i];
        int64_t id = static_cast<int64_t>(20 + i);
        size_t t = w.run(id);
        close_all(end.hear().second);
        std::string member = result.empty() ? "" : R"(,"result":)" + result;
        end.say(R"({"done":{"task":)" + std::to_string(id) + R"(,"exit_code":0)" + member + "}}");
        REQUIRE(w.settle([&] { return w.exits[t].has_value(); }));
        CHECK(w.exits[t]->exit_code == 0);
        CHECK(w.exits[t]->result == expected);
    }
    CHECK(w.processes.processes.size() == 1);  // one worker served them all
}

TEST_CASE(
    "warm pool: max_tasks_per_worker retires a worker after its tasks, and a task ended early ends its "
    "worker",
    "[unit][warm]") {
    World w(WorkerSpec{{"worker"}, 1, 0});
    WorkerEnd end = w.worker(0);
    end.say(R"({"hello":{"protocol":1}})");
    size_t t = w.run(7);
    close_all(end.hear().second);
    end.say(R"({"done":{"task":7,"signal":11}})");
    w.settle([&] { return w.exits[t].has_value(); });
    REQUIRE(w.exits[t].has_value());
    CHECK(w.exits[t]->signal == 11);
    CHECK(end.hear().first.empty());           // end of file: the worker is to exit
    CHECK(w.processes.processes.size() == 2);  // and a fresh one is on its way
    w.timers.advance(WarmPool::k_kill_after.count());
    CHECK(w.processes.signals_to(w.worker_pid(0)) ==
          std::vector<std::pair<int, int>>{{w.worker_pid(0), SIGKILL}});

    // A task of the new worker ended early (a timeout, a cancel): the signal goes to the worker's group.
    WorkerEnd second = w.worker(1);
    second.say(R"({"hello":{"protocol":1}})");
    size_t t2 = w.run(8);
    close_all(second.hear().second);
    w.pump();
    REQUIRE(w.started[t2].has_value());
    CHECK(w.pool->signal(w.worker_pid(1), SIGTERM));
    CHECK(w.processes.signals_to(w.worker_pid(1)) ==
          std::vector<std::pair<int, int>>{{w.worker_pid(1), SIGTERM}});
    CHECK_FALSE(w.pool->signal(12345, SIGTERM));  // not one of its workers
}

TEST_CASE("warm pool: workers that end before their hello back off, then break the pool and fail its tasks",
          "[unit][warm]") {
    World w(WorkerSpec{{"worker"}, 0, 0});
    size_t t = w.run(7);
    std::vector<int64_t> delays;
    for (int n = 0; n < WarmPool::k_failures_before_broken; ++n) {
        REQUIRE(w.processes.processes.size() == static_cast<size_t>(n + 1));
        size_t before = w.timers.started.size();
        w.processes.exit(w.worker_pid(static_cast<size_t>(n)), ExitInfo{1, std::nullopt, {}});
        REQUIRE(w.timers.started.size() == before + 1);
        delays.push_back(w.timers.started.back().count());
        w.timers.advance(delays.back());
    }
    CHECK(delays == std::vector<int64_t>{100, 200, 400, 800, 1600});
    REQUIRE(w.started[t].has_value());
    REQUIRE_FALSE(w.started[t]->has_value());
    CHECK(w.started[t]->error().message().find("pool warm is broken") != std::string::npos);
    CHECK(w.pool->describe().at("broken") == true);
    // A task for a broken pool fails at once, until a worker says hello.
    size_t t2 = w.run(8);
    REQUIRE(w.started[t2].has_value());
    CHECK_FALSE(w.started[t2]->has_value());
    w.worker(w.processes.processes.size() - 1).say(R"({"hello":{"protocol":1}})");
    w.settle([&] { return w.pool->describe().at("broken") == false; });
    CHECK(w.pool->describe().at("broken") == false);
}

TEST_CASE(
    "warm spawner: a warm pool's tasks go to its workers, others to processes, no worker's group "
    "outlives its task",
    "[unit][warm]") {
    mpctl::test::TempDir dir;
    asio::io_context io;
    FakeSpawner processes;
    FakeTimers timers;
    WarmSpawner warm(io, processes, timers, dir / "workers");
    warm.set_pool("py", WorkerSpec{{"worker"}, 0, 0}, 2);
    CHECK(processes.processes.size() == 2);  // started when the pool is set, not when a task comes
    CHECK(warm.describe("py").at("worker") == json::array({"worker"}));
    CHECK(warm.describe("cold").is_null());
    SpawnSpec cold;
    cold.stages.push_back(SpawnStage{{"true"}, "", {}});
    cold.pool = "cold";
    warm.spawn(
        std::move(cold), [](auto) {}, [](size_t, ExitInfo) {});
    CHECK(processes.processes.size() == 3);
    CHECK(processes.processes.back().argv() == std::vector<std::string>{"true"});
    int worker = processes.processes[0].pid;
    processes.alive_groups.insert(worker);
    CHECK_FALSE(warm.group_alive(worker));  // the worker goes on to the next task
    processes.alive_groups.insert(processes.processes.back().pid);
    CHECK(warm.group_alive(processes.processes.back().pid));
    warm.set_pool("py", std::nullopt, 2);  // cold again: its workers are let go
    CHECK(warm.describe("py").is_null());
}

TEST_CASE("warm pool: a worker idle for worker_idle_timeout ends, and is started again when a task comes",
          "[unit][warm]") {
    World w(WorkerSpec{{"worker"}, 0, 2.5});
    WorkerEnd end = w.worker(0);
    end.say(R"({"hello":{"protocol":1}})");
    w.settle([&] { return w.pool->describe().at("worker_processes").at(0).at("state") == "ready"; });
    REQUIRE(w.pool->describe().at("worker_processes").at(0).at("state") == "ready");
    w.timers.advance(2499);
    CHECK(w.pool->describe().at("worker_processes").at(0).at("state") == "ready");
    w.timers.advance(1);
    CHECK(end.hear().first.empty());  // its socket closed: the worker exits
    w.processes.exit(w.worker_pid(0), ExitInfo{0, std::nullopt, {}});
    CHECK(w.processes.processes.size() == 1);  // not replaced while there is nothing to do
    CHECK(w.pool->describe().at("worker_processes").empty());
    size_t t = w.run(7);
    REQUIRE(w.processes.processes.size() == 2);
    WorkerEnd fresh = w.worker(1);
    fresh.say(R"({"hello":{"protocol":1}})");
    close_all(fresh.hear().second);
    w.pump();
    CHECK(w.started[t].has_value());
}
