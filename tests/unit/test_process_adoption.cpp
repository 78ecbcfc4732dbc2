// ProcessSpawner::adopt with real processes that are not the spawner's children, as after a daemon restart:
// each is made by a double fork with the test as the child subreaper, so that the test plays the
// supervising parent (it journals the exit, or not, and reaps). The status comes from the exit journal or,
// once reaped, from PIDFD_GET_INFO; a pid whose start time does not match is refused.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/exit_journal.hpp>
#include <mpctl/daemon/exec/exit_records.hpp>
#include <mpctl/daemon/exec/process_spawner.hpp>

#include "temp_dir.hpp"

using Catch::Matchers::Contains;
using mpctl::daemon::ExitInfo;
using mpctl::daemon::ExitRecord;
using mpctl::daemon::ProcessSpawner;
using mpctl::test::TempDir;

namespace {

// The test process inherits the orphans while it lives: it is the supervisor here.
class Subreaper {
  public:
    Subreaper() { REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); }
    ~Subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
    Subreaper(const Subreaper&) = delete;
    Subreaper& operator=(const Subreaper&) = delete;
};

// What every adoption test starts from: the test as the orphans' subreaper, and a spawner whose exit
// journal (in a fresh state dir) is JOURNAL.
struct Adopting {
    Subreaper subreaper;
    TempDir dir;
    std::string journal = mpctl::daemon::exit_journal_path(dir.path());
    asio::io_context io;
    ProcessSpawner spawner{io};
    Adopting() { spawner.set_exit_journal(journal); }
};

// A process started by a fork of a fork: not the spawner's child (its parent died), the test's by
// reparenting. It waits until release(), then exits with EXIT_CODE, or is killed by SIGNO if nonzero.
class Orphan {
  public:
    explicit Orphan(int exit_code, int signo = 0) {
        int go[2];
        int report[2];
        REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
        recorded_start_ = mpctl::daemon::boottime_ticks_now();  // as the daemon reads it before its clone
        pid_t middle = ::fork();
        REQUIRE(middle >= 0);
        if (middle == 0) {
            pid_t task = ::fork();
            if (task == 0) {
                ::close(go[1]);
                char c = 0;
                while (::read(go[0], &c, 1) < 0 && errno == EINTR) {
                }
                if (signo != 0) {
                    ::signal(signo, SIG_DFL);
                    ::raise(signo);
                }
                ::_exit(exit_code);
            }
            (void)!::write(report[1], &task, sizeof task);
            ::_exit(0);
        }
        ::waitpid(middle, nullptr, 0);
        ::close(go[0]);
        ::close(report[1]);
        REQUIRE(::read(report[0], &pid_, sizeof pid_) == static_cast<ssize_t>(sizeof pid_));
        ::close(report[0]);
        release_fd_ = go[1];
        auto started = mpctl::common::process_start_time(pid_);
        REQUIRE(started);
        start_ = *started;
    }
    ~Orphan() {
        if (!reaped_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (release_fd_ >= 0) {
            ::close(release_fd_);
        }
    }
    Orphan(const Orphan&) = delete;
    Orphan& operator=(const Orphan&) = delete;

    // It exits now; back as a zombie, not reaped yet.
    void release() {
        ::close(release_fd_);
        release_fd_ = -1;
        siginfo_t info{};
        REQUIRE(::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) == 0);
    }
    // What the supervisor does before it reaps: the record of its end.
    [[nodiscard]] ExitRecord record(int wait_status) const { return ExitRecord{pid_, start_, wait_status}; }
    // The reap, by its parent (the test): the wait status.
    int reap() {
        int status = 0;
        REQUIRE(::waitpid(pid_, &status, 0) == pid_);
        reaped_ = true;
        return status;
    }

    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] uint64_t recorded_start() const { return recorded_start_; }

  private:
    pid_t pid_ = 0;
    uint64_t recorded_start_ = 0;
    uint64_t start_ = 0;  // /proc/PID/stat's
    int release_fd_ = -1;
    bool reaped_ = false;
};

void append_record(const std::string& journal, const ExitRecord& r) {
    auto fd = mpctl::daemon::open_exit_journal_for_append(journal);
    REQUIRE(fd);
    REQUIRE(mpctl::daemon::append_exit_record(fd->get(), r));
}

void run_adopting_until(asio::io_context& io, const std::function<bool()>& done,
                        std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        io.run_for(std::chrono::milliseconds(10));
        io.restart();
    }
}

off_t journal_size(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

}  // namespace

TEST_CASE("an adopted process's exit status comes from the record the supervisor journals after its exit",
          "[unit][spawner][adoption]") {
    Adopting a;
    auto& [subreaper, dir, journal, io, spawner] = a;
    Orphan orphan(3);
    std::optional<ExitInfo> exit;
    auto adopted =
        spawner.adopt(orphan.pid(), orphan.recorded_start(), "default", [&](size_t stage, ExitInfo info) {
            CHECK(stage == 0);
            exit = info;
        });
    REQUIRE(adopted);
    spawner.adoptions_done();
    append_record(journal, ExitRecord{orphan.pid() + 1, orphan.recorded_start(), 0});  // another one's

    orphan.release();
    // Not reaped, nothing journaled: the kernel cannot tell yet, and the spawner keeps looking.
    run_adopting_until(
        io, [&] { return exit.has_value(); }, std::chrono::milliseconds(200));
    CHECK_FALSE(exit);
    append_record(journal, orphan.record(3 << 8));
    run_adopting_until(io, [&] { return exit.has_value(); });
    orphan.reap();
    REQUIRE(exit);
    CHECK(exit->exit_code == 3);
    CHECK_FALSE(exit->signal);
    CHECK_FALSE(exit->unknown);
    // No adopted process is left: the journal is emptied.
    CHECK(journal_size(journal) == 0);
}

TEST_CASE("once its parent has reaped it, an adopted process's status comes from PIDFD_GET_INFO",
          "[unit][spawner][adoption]") {
    Adopting a;
    auto& [subreaper, dir, journal, io, spawner] = a;
    Orphan orphan(0, SIGTERM);
    std::optional<ExitInfo> exit;
    REQUIRE(spawner.adopt(orphan.pid(), orphan.recorded_start(), "default",
                          [&](size_t, ExitInfo info) { exit = info; }));
    orphan.release();
    int status = orphan.reap();
    REQUIRE(WIFSIGNALED(status));
    run_adopting_until(io, [&] { return exit.has_value(); });
    REQUIRE(exit);
    CHECK(exit->signal == SIGTERM);
    CHECK_FALSE(exit->exit_code);
    CHECK_FALSE(exit->unknown);
}

TEST_CASE("a process that ended while no daemon watched is adopted from its journal record",
          "[unit][spawner][adoption]") {
    Adopting a;
    auto& [subreaper, dir, journal, io, spawner] = a;
    Orphan orphan(7);
    orphan.release();
    append_record(journal, orphan.record(7 << 8));
    orphan.reap();

    std::optional<ExitInfo> exit;
    auto adopted = spawner.adopt(orphan.pid(), orphan.recorded_start(), "default",
                                 [&](size_t, ExitInfo info) { exit = info; });
    REQUIRE(adopted);
    CHECK_FALSE(exit);  // never before adopt() has returned
    run_adopting_until(io, [&] { return exit.has_value(); });
    REQUIRE(exit);
    CHECK(exit->exit_code == 7);
}

TEST_CASE("adopt refuses a pid that is another process now, and one gone without a record",
          "[unit][spawner][adoption]") {
    Adopting a;
    auto& [subreaper, dir, journal, io, spawner] = a;
    Orphan orphan(0);
    const uint64_t hz = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
    // Journaled as started a minute earlier, or a minute later: not this process.
    for (uint64_t recorded : {orphan.recorded_start() - 60 * hz, orphan.recorded_start() + 60 * hz}) {
        auto r = spawner.adopt(orphan.pid(), recorded, "default", [](size_t, ExitInfo) { FAIL("no exit"); });
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message(), Contains("another process"));
    }
    orphan.release();
    orphan.reap();
    auto gone = spawner.adopt(orphan.pid(), orphan.recorded_start(), "default",
                              [](size_t, ExitInfo) { FAIL("no exit"); });
    REQUIRE_FALSE(gone);
    CHECK_THAT(gone.error().message(), Contains("gone"));
}

TEST_CASE("an adopted process whose end no source records ends as unknown at the deadline",
          "[unit][spawner][adoption]") {
    Adopting a;
    auto& [subreaper, dir, journal, io, spawner] = a;
    spawner.set_adopted_exit_wait(std::chrono::milliseconds(300));
    Orphan orphan(5);
    std::optional<ExitInfo> exit;
    REQUIRE(spawner.adopt(orphan.pid(), orphan.recorded_start(), "default",
                          [&](size_t, ExitInfo info) { exit = info; }));
    orphan.release();  // a zombie nobody journals or reaps in time
    auto began = std::chrono::steady_clock::now();
    run_adopting_until(io, [&] { return exit.has_value(); });
    REQUIRE(exit);
    CHECK(exit->unknown);
    CHECK_FALSE(exit->exit_code);
    CHECK_FALSE(exit->signal);
    CHECK(std::chrono::steady_clock::now() - began >= std::chrono::milliseconds(250));
    orphan.reap();
}

TEST_CASE("a spawned process's start time is the clock read before its clone", "[unit][spawner][adoption]") {
    TempDir dir;
    asio::io_context io;
    ProcessSpawner spawner(io);
    spawner.set_spawn_on_loop(true);
    mpctl::daemon::SpawnSpec spec;
    mpctl::daemon::SpawnStage stage;
    stage.argv = {"sleep", "5"};
    stage.stderr_path = dir / "err";
    spec.stages.push_back(std::move(stage));
    spec.cwd = dir.path();
    spec.env =
        std::make_shared<const mpctl::daemon::EnvBlock>(std::vector<std::string>{"PATH=/usr/bin:/bin"});
    spec.stdout_path = dir / "out";
    std::optional<int> pid;
    uint64_t ticks = 0;
    bool exited = false;
    spawner.spawn(
        std::move(spec),
        [&](mpctl::common::Result<std::vector<int>> r) {
            REQUIRE(r);
            pid = r->front();
            ticks = spawner.start_ticks(*pid);
        },
        [&](size_t, ExitInfo) { exited = true; });
    run_adopting_until(io, [&] { return pid.has_value(); });
    REQUIRE(pid);
    auto actual = mpctl::common::process_start_time(*pid);
    REQUIRE(actual);
    CHECK(ticks != 0);
    CHECK(mpctl::daemon::started_as_recorded(ticks, *actual));
    spawner.signal_group(*pid, SIGKILL);
    run_adopting_until(io, [&] { return exited; });
    CHECK(spawner.start_ticks(*pid) == 0);  // reaped: forgotten
}

TEST_CASE("after an upgrade the last image's children that are no task are reaped as they end, tasks adopted",
          "[unit][adoption]") {
    Subreaper subreaper;
    Orphan stray(0);    // a child of this process, as the last image's warm worker was after the exec
    Orphan adopted(3);  // one the journal names as a task's: adopt() takes it, reap_strays leaves it
    asio::io_context io;
    // The new image's spawner is made on a later clock tick than both started: its start is what tells the
    // last image's children from the ones it spawns itself.
    const uint64_t latest = std::max(*mpctl::common::process_start_time(stray.pid()),
                                     *mpctl::common::process_start_time(adopted.pid()));
    run_adopting_until(io, [&] { return mpctl::daemon::boottime_ticks_now() > latest; });
    ProcessSpawner spawner{io};
    spawner.set_reaps_own_children();
    std::optional<ExitInfo> adopted_end;
    REQUIRE(spawner.adopt(adopted.pid(), adopted.recorded_start(), "default",
                          [&](size_t, ExitInfo info) { adopted_end = info; }));
    spawner.adoptions_done();
    spawner.reap_strays();
    adopted.release();  // first: its fork holds a copy of the stray's release pipe
    stray.release();
    auto gone = [](pid_t pid) {
        return ::kill(pid, 0) != 0 && errno == ESRCH;
    };  // a zombie is still there
    run_adopting_until(io, [&] { return adopted_end && gone(stray.pid()); });
    CHECK(gone(stray.pid()));
    REQUIRE(adopted_end);
    CHECK(adopted_end->exit_code == 3);
}
