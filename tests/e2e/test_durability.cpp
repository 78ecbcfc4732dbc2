// Durable before acknowledged: kill -9 the daemon, start it again on the same state dir, and every id a
// submit returned is still there; queued tasks run, the ones that were running and ended unrecorded while
// no daemon ran (no supervising parent here) are failed/lost, and ids are never reused. And a full disk:
// refused submits, nothing acknowledged lost, recovery when space returns.

#include <algorithm>
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "e2e_helpers.hpp"

using namespace mpctl::test;
using namespace mpctl::test::e2e;
using Catch::Matchers::Contains;

TEST_CASE(
    "after kill -9 and a restart every acknowledged task exists, queued ones run, running ones are lost",
    "[e2e][durability]") {
    DaemonFixture d(DaemonOptions{2, {}, {}, {}});
    TempDir t;
    GroupReaper reaper;  // the tasks running at the kill are orphaned: they must not outlive the test
    REQUIRE(d.mpctl({"pool", "set", "q", "--workers", "1"}).exit_code == 0);

    // Running at the kill: one in the default pool, one holding pool q's only slot. They block until the
    // test ends (or is reaped), so they are certainly running when the daemon dies.
    int64_t long_default = d.submit({"--", "sh", "-c", sh_wait_for(t / "STOP")});
    int64_t long_q = d.submit({"--pool", "q", "--", "sh", "-c", sh_wait_for(t / "STOP")});
    std::vector<int64_t> queued;
    for (int i = 0; i < 12; ++i) {
        queued.push_back(d.submit({"--pool", "q", "--name", "q" + std::to_string(i), "--", "touch",
                                   t / ("ran" + std::to_string(i))}));
    }
    std::vector<pid_t> orphans;
    for (int64_t id : {long_default, long_q}) {
        json s = d.wait_for_state(id, "running");
        REQUIRE(s["pid"].is_number_integer());
        reaper.add(s["pid"].get<pid_t>());
        orphans.push_back(s["pid"].get<pid_t>());
    }
    CHECK(d.status(queued.front())["state"] == "pending");

    d.kill9();
    REQUIRE_FALSE(d.running());
    touch(t / "STOP");  // the orphans end now; their outcome is unknown to the daemon
    for (pid_t pid : orphans) {
        reap_orphan(pid);
    }
    d.start();

    for (int64_t id : {long_default, long_q}) {
        json s = d.status(id);
        INFO(s.dump());
        CHECK(s["state"] == "failed");
        CHECK(s["reason"] == "lost");
        CHECK(s["pid"].is_null());
        CHECK(d.mpctl({"wait", str(id)}).exit_code == 125);
    }
    std::vector<std::string> wait_args{"wait"};
    for (int64_t id : queued) {
        wait_args.push_back(str(id));
    }
    CHECK(d.mpctl(wait_args).exit_code == 0);
    for (size_t i = 0; i < queued.size(); ++i) {
        json s = d.status(queued[i]);
        CHECK(s["state"] == "succeeded");
        CHECK(s["name"] == "q" + std::to_string(i));
        CHECK(exists(t / ("ran" + std::to_string(i))));
    }

    // Ids are never reused: the next one is above every earlier one.
    int64_t highest = std::max({long_default, long_q, *std::max_element(queued.begin(), queued.end())});
    int64_t next = d.submit({"--", "true"});
    CHECK(next > highest);
    CHECK(d.mpctl_ndjson({"list"}).size() == queued.size() + 3);
}

TEST_CASE("every id a submit returned survives a kill -9 right after it", "[e2e][durability]") {
    DaemonFixture d(DaemonOptions{1, {}, {}, {}});
    TempDir t;
    GroupReaper reaper;
    // One slot, held: everything else stays queued.
    int64_t blocker = d.submit({"--", "sh", "-c", sh_wait_for(t / "STOP")});
    std::vector<int64_t> ids;
    for (int i = 0; i < 25; ++i) {
        ids.push_back(d.submit({"--label", "n=" + std::to_string(i), "--", "true"}));
    }
    json b = d.wait_for_state(blocker, "running");
    reaper.add(b["pid"].get<pid_t>());
    d.sync_journal("default", 1);
    d.kill9();
    touch(t / "STOP");
    reap_orphan(b["pid"].get<pid_t>());
    d.start();

    CHECK(d.status(blocker)["reason"] == "lost");
    for (size_t i = 0; i < ids.size(); ++i) {
        auto r = d.mpctl({"wait", str(ids[i])});
        INFO("task " << ids[i] << ": " << r.err);
        CHECK(r.exit_code == 0);
        CHECK(d.status(ids[i])["labels"]["n"] == std::to_string(i));
    }
    int64_t next = d.submit({"--", "true"});
    CHECK(next > ids.back());
}

TEST_CASE("ids are not reused after a clean restart nor after a kill -9", "[e2e][durability]") {
    DaemonFixture d;
    int64_t first = d.submit({"--", "true"});
    d.wait_for_state(first, "succeeded");
    CHECK(d.stop() == 0);
    d.start();
    int64_t second = d.submit({"--", "true"});
    CHECK(second > first);
    // Killed right after a submit: whether that task ran or was lost, its id stays taken.
    d.kill9();
    d.start();
    int64_t third = d.submit({"--", "true"});
    CHECK(third > second);
    CHECK(d.mpctl({"wait", str(first), str(third)}).exit_code == 0);
    json s = d.status(second);
    CHECK(s["id"] == second);
    CHECK(s["argv"] == json::array({"true"}));
    CHECK(d.mpctl({"wait", str(second)}).exit_code != 4);
}

TEST_CASE("a journal that lost its rows hands out no id whose output files remain", "[e2e][durability]") {
    DaemonFixture d;
    int64_t old_id = d.submit({"--", "echo", "kept"});
    CHECK(d.mpctl({"wait", str(old_id)}).exit_code == 0);
    std::string old_stdout = d.status(old_id)["stdout_path"].get<std::string>();
    REQUIRE(slurp(old_stdout) == "kept\n");
    REQUIRE(d.stop() == 0);
    // The journal gone (deleted, or salvaged without this row): nothing in it says the id was taken.
    REQUIRE(::unlink((d.state_dir() + "/mpctld.db").c_str()) == 0);
    d.start();
    int64_t next = d.submit({"--", "echo", "new"});
    CHECK(next > old_id);
    CHECK(d.mpctl({"wait", str(next)}).exit_code == 0);
    CHECK(slurp(old_stdout) == "kept\n");
}

TEST_CASE("pool sizes set with pool set survive a kill -9", "[e2e][durability]") {
    DaemonFixture d(DaemonOptions{4, {}, {}, {}});
    TempDir t;
    REQUIRE(d.mpctl({"pool", "set", "kept", "--workers", "1"}).exit_code == 0);
    d.kill9();
    d.start();
    // Each task needs the other running: with the one slot that survived, the second one waits.
    int64_t a =
        d.submit({"--pool", "kept", "--", "sh", "-c", "touch " + (t / "A") + "; " + sh_wait_for(t / "B")});
    int64_t b =
        d.submit({"--pool", "kept", "--", "sh", "-c", "touch " + (t / "B") + "; " + sh_wait_for(t / "A")});
    REQUIRE(wait_for_file(t / "A"));
    CHECK(d.status(b)["state"] == "pending");
    bool found = false;
    for (const auto& p : d.mpctl_ndjson({"pool", "list"})) {
        if (p["name"] == "kept") {
            found = true;
            CHECK(p["workers"] == 1);
            CHECK(p["running"] == 1);
            CHECK(p["pending"] == 1);
        }
    }
    CHECK(found);
    REQUIRE(d.mpctl({"pool", "set", "kept", "--workers", "2"}).exit_code == 0);
    CHECK(d.mpctl({"wait", str(a), str(b)}).exit_code == 0);
}

TEST_CASE("pool list still shows a pool sized with pool set after a restart", "[e2e][durability]") {
    DaemonFixture d;
    REQUIRE(d.mpctl({"pool", "set", "kept", "--workers", "7"}).exit_code == 0);
    CHECK(d.stop() == 0);
    d.start();
    json kept;
    for (const auto& p : d.mpctl_ndjson({"pool", "list"})) {
        if (p["name"] == "kept") {
            kept = p;
        }
    }
    INFO("pool list after the restart has no pool 'kept'");
    REQUIRE(kept.is_object());
    CHECK(kept["workers"] == 7);
}

namespace {

// Runs the daemon's command line ("$@" after the first argument) with its state dir on a 4 MiB tmpfs of a
// private mount namespace (unshare -rm: no root needed where user namespaces are allowed), half of it
// taken by a ballast file that is deleted once the test creates FIRST_ARG/free-space. Once the daemon is
// gone, its journal's task ids and states go to FIRST_ARG/journal (only processes in that mount namespace
// see the state dir, and while the daemon runs its journal is its alone: journal_vfs.hpp).
const char* k_small_fs_launcher = R"(T=$1; shift
state=; prev=
for a in "$@"; do [ "$prev" = --state-dir ] && state=$a; prev=$a; done
mkdir -p "$state" && mount -t tmpfs -o size=4m mpctl-full-disk "$state" || exit 97
head -c 2M /dev/zero > "$state/ballast" || exit 98
daemon=$$
( while kill -0 "$daemon" 2>/dev/null; do
    if [ -e "$T/free-space" ] && [ ! -e "$T/space-freed" ]; then rm -f "$state/ballast"; touch "$T/space-freed"; fi
    sleep 0.05
  done
  python3 -c 'import sqlite3, sys
for i, s in sqlite3.connect(sys.argv[1]).execute("SELECT id, state FROM tasks ORDER BY id"):
    print(i, s)' "$state/mpctld.db" > "$T/journal.part" 2>&1
  mv "$T/journal.part" "$T/journal" ) &
exec "$@")";

// The journal's task ids and their states, as the launcher read them once the daemon was gone.
std::map<int64_t, std::string> journal_states(const TempDir& t) {
    REQUIRE(wait_for_file(t / "journal"));
    std::string text = slurp(t / "journal");
    INFO(text);
    std::map<int64_t, std::string> out;
    for (const auto& line : lines_of(text)) {
        auto space = line.find(' ');
        REQUIRE(space != std::string::npos);
        out[std::stoll(line.substr(0, space))] = line.substr(space + 1);
    }
    return out;
}

}  // namespace

TEST_CASE(
    "a full disk: submits are refused with io_error, nothing acknowledged is lost, and the daemon "
    "recovers when space returns",
    "[e2e][durability][full_disk]") {
    TempDir t;
    TempDir probe;
    if (run_process({"unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m probe '" + probe.path() + "'"})
            .exit_code != 0) {
        WARN("skipped: no private mount namespace with a tmpfs here (unshare -rm)");
        return;
    }
    // Commits on the loop (normal) and on the writer thread (full) retry in their own ways.
    std::string durability = GENERATE(as<std::string>{}, "normal", "full");
    INFO("durability " << durability);
    DaemonOptions options;
    options.extra_args = {"--durability", durability};
    options.launcher = {"unshare", "-rm", "sh", "-c", k_small_fs_launcher, "in-small-fs", t.path()};
    DaemonFixture d(options);

    int64_t before = d.submit({"--", "true"});
    d.wait_for_state(before, "succeeded");

    // A task fills the file system (its own write fails: that is the task's business).
    std::string filler = d.state_dir() + "/filler";
    auto fill = d.mpctl({"run", "--", "sh", "-c", "head -c 8M /dev/zero > \"$0\"", filler});
    CHECK(fill.exit_code != 0);

    // Now the journal cannot grow: a submit is refused, clearly, and nothing is queued.
    auto refused = d.mpctl({"--json", "submit", "--", "touch", t / "must-not-run"});
    INFO(refused.err);
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.err, Contains("disk is full"));
    json error = json::parse(lines_of(refused.out).at(0))["error"];
    CHECK(error["data"]["error"] == "io_error");

    // The daemon keeps serving what it has.
    auto listed = d.mpctl_ndjson({"list"});
    CHECK(listed.size() == 2);
    json fill_task = listed.back();
    CHECK(fill_task["state"] == "failed");
    CHECK(d.status(before)["state"] == "succeeded");

    // Space returns: submits work again, the state changes that could not be written reach the journal
    // (retried every second), and the journal holds exactly the tasks the daemon acknowledged.
    touch(t / "free-space");
    REQUIRE(wait_for_file(t / "space-freed"));
    int64_t after = d.submit({"--", "true"});
    d.wait_for_state(after, "succeeded");
    int64_t fill_id = fill_task["id"].get<int64_t>();
    std::map<int64_t, std::string> acknowledged;
    for (const auto& s : d.mpctl_ndjson({"list"})) {
        acknowledged[s["id"].get<int64_t>()] = s["state"].get<std::string>();
    }
    CHECK(acknowledged ==
          std::map<int64_t, std::string>{{before, "succeeded"}, {fill_id, "failed"}, {after, "succeeded"}});
    // A pool change is answered after its commit, which takes every state change queued before it (the
    // ones that failed on the full disk went back to the head of the queue). Then a crash: no final commit
    // at a clean stop stands in for writes the full disk stopped.
    d.sync_journal("default", 2);
    d.kill9();
    CHECK(journal_states(t) == acknowledged);
    CHECK_FALSE(exists(t / "must-not-run"));
}

TEST_CASE(
    "a full disk: queue puts and dict sets are refused with io_error and change nothing, gets give back "
    "exactly what was acknowledged once space returns",
    "[e2e][durability][full_disk][manager]") {
    TempDir t;
    TempDir probe;
    if (run_process({"unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m probe '" + probe.path() + "'"})
            .exit_code != 0) {
        WARN("skipped: no private mount namespace with a tmpfs here (unshare -rm)");
        return;
    }
    DaemonOptions options;
    options.launcher = {"unshare", "-rm", "sh", "-c", k_small_fs_launcher, "in-small-fs", t.path()};
    DaemonFixture d(options);

    REQUIRE(d.mpctl({"queue", "put", "jobs", "1", "2"}).exit_code == 0);
    REQUIRE(d.mpctl({"kv", "set", "cfg", "mode", "fast"}).exit_code == 0);
    auto fill =
        d.mpctl({"run", "--", "sh", "-c", "head -c 8M /dev/zero > \"$0\"", d.state_dir() + "/filler"});
    CHECK(fill.exit_code != 0);

    // A value larger than any slack the journal's files have left: the commit cannot be written.
    ProcessOptions big;
    big.stdin_data = "\"" + std::string(600 * 1024, 'x') + "\"\n";
    auto put = d.mpctl({"--json", "queue", "put", "jobs", "-"}, big);
    INFO(put.err);
    CHECK(put.exit_code == 1);
    CHECK(json::parse(lines_of(put.out).at(0))["error"]["data"]["error"] == "io_error");
    CHECK_THAT(put.err, Contains("nothing was put into queue jobs"));
    auto set = d.mpctl({"--json", "kv", "set", "cfg", "mode", "\"" + std::string(100 * 1024, 'y') + "\""});
    INFO(set.err);
    CHECK(set.exit_code == 1);
    CHECK(json::parse(lines_of(set.out).at(0))["error"]["data"]["error"] == "io_error");
    // Nothing of either is there: the queue holds its two values, the dict its old value.
    CHECK(json::parse(d.mpctl({"--json", "queue", "info", "jobs"}).out)["length"] == 2);
    auto mode = d.mpctl({"kv", "get", "cfg", "mode"});
    INFO(mode.err << " exit " << mode.exit_code);
    CHECK(mode.out == "fast\n");

    touch(t / "free-space");
    REQUIRE(wait_for_file(t / "space-freed"));
    REQUIRE(d.mpctl({"queue", "put", "jobs", "3"}).exit_code == 0);
    auto got = d.mpctl({"queue", "get", "jobs", "--count", "3", "--nonblock"});
    CHECK(got.exit_code == 0);
    CHECK(got.out == "1\n2\n3\n");
}

// A client told a task's outcome may act on it at once; a crash of the daemon a moment later must neither
// take that outcome back nor run the task again. The end of a task is committed before anyone is told: by
// a wait parked before the end, a wait or log stream asked for just after it, and `mpctl run`. Without
// that the start and the end waited ~2 ms for a commit shared with others, and a kill right after the
// answer left the task pending in the journal nearly every time: the next daemon ran it a second time.
TEST_CASE("an outcome a client was told survives kill -9 of the daemon right after the answer",
          "[e2e][durability]") {
    DaemonFixture d(DaemonOptions{2, {}, {}, {}});
    TempDir t;
    std::map<int64_t, int> told;
    std::map<int64_t, std::string> runs;  // each run of a task appends a line here
    for (int round = 0; round < 9; ++round) {
        const int code = 10 + round;
        const std::string log = t / ("runs" + std::to_string(round));
        const std::vector<std::string> argv{"sh", "-c",
                                            "echo run >> '" + log + "'; exit " + std::to_string(code)};
        int64_t id = 0;
        if (round % 3 == 2) {
            // mpctl run: submit, then follow the output to the end, whose outcome is its exit code.
            std::vector<std::string> args{"run", "--"};
            args.insert(args.end(), argv.begin(), argv.end());
            ProcessResult r = d.mpctl(args);
            REQUIRE(r.exit_code == code);
            id = d.mpctl_json({"list", "--limit", "1"})["id"].get<int64_t>();
        } else {
            auto c = d.connect();
            json sub = c->call("task.submit", {{"argv", argv}});
            REQUIRE(sub.contains("result"));
            id = sub["result"]["id"].get<int64_t>();
            if (round % 3 == 1) {
                json logs = c->call("task.logs", {{"id", id}, {"follow", true}});
                INFO(logs.dump());
                REQUIRE(logs.contains("result"));
            }
            // Round 0 most likely parks its wait before the end; round 1 asks once the stream ended.
            json waited = c->call("task.wait", {{"ids", {id}}, {"timeout", 60}});
            INFO(waited.dump());
            REQUIRE(waited.contains("result"));
        }
        told[id] = code;
        runs[id] = log;
        d.kill9();
        d.start();
    }
    for (const auto& [id, code] : told) {
        json s = d.status(id);
        INFO(s.dump());
        CHECK(s["state"] == "failed");
        CHECK(s["reason"] == "exit");
        CHECK(s["exit_code"] == code);
        CHECK(s["attempts"] == 1);
        CHECK(slurp(runs[id]) == "run\n");
    }
}

TEST_CASE("while the daemon runs its journal is its alone, and readable once it stopped",
          "[e2e][durability]") {
    DaemonFixture d;
    int64_t id = d.submit({"--", "true"});
    d.wait_for_state(id, "succeeded");
    d.sync_journal("default", 2);
    // SQLite of another process, with its own fcntl locks: it must not read (nor write) beside the daemon's
    // in-process locks (daemon/store/journal_vfs), which it cannot see.
    const char* reader =
        "import sqlite3, sys\n"
        "try:\n"
        "    rows = sqlite3.connect(sys.argv[1], timeout=0.5).execute('SELECT id, state FROM "
        "tasks').fetchall()\n"
        "except sqlite3.OperationalError as e:\n"
        "    print(e)\n"
        "    sys.exit(3)\n"
        "print(rows)\n";
    const std::string db = d.state_dir() + "/mpctld.db";
    auto refused = run_process({"python3", "-c", reader, db});
    INFO(refused.out << refused.err);
    CHECK(refused.exit_code == 3);
    CHECK((refused.out.find("locked") != std::string::npos ||
           refused.out.find("locking protocol") != std::string::npos));
    REQUIRE(d.stop() == 0);
    auto read = run_process({"python3", "-c", reader, db});
    INFO(read.out << read.err);
    CHECK(read.exit_code == 0);
    CHECK(read.out == "[(" + std::to_string(id) + ", 'succeeded')]\n");
}
