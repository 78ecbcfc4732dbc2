// What the daemon and a Slurm job say to each other (daemon/slurm/job_files): the script, sbatch's arguments,
// and the readers of sbatch's, squeue's and the runner's output, without Slurm. The script is read back by a
// real /bin/sh.

#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/job_pids.hpp>
#include <mpctl/daemon/slurm/job_files.hpp>

#include "process.hpp"
#include "temp_dir.hpp"

using namespace mpctl::daemon::slurm;
using mpctl::test::run_process;

namespace {

// run_process's options with SET added to the test's environment and UNSET taken from it.
mpctl::test::ProcessOptions env(std::map<std::string, std::string> set, std::vector<std::string> unset = {}) {
    mpctl::test::ProcessOptions o;
    o.env_set = std::move(set);
    o.env_unset = std::move(unset);
    return o;
}

}  // namespace

namespace {

JobRequest request(std::vector<std::string> argv) {
    JobRequest j;
    j.runner = "/usr/lib/mpctl dir/mpctld";
    j.status_dir = "/state/slurm";
    j.script_path = "/state/slurm/task-1-1.sh";
    j.argv = std::move(argv);
    j.cwd = "/work dir";
    j.stdout_path = "/state/output/0/1.stdout";
    j.stderr_path = "/state/output/0/1.stderr";
    j.name = "mpctl-1";
    return j;
}

}  // namespace

TEST_CASE("a job script execs the runner with the command's words exactly as given", "[unit][slurm]") {
    mpctl::test::TempDir dir;
    // The runner is a script that shows its arguments: what sh passes to it is what the runner would get.
    std::string shower = dir / "show args";
    std::ofstream(shower) << "#!/bin/sh\nfor a; do printf '<%s>' \"$a\"; done\n";
    REQUIRE(::chmod(shower.c_str(), 0755) == 0);
    JobRequest j = request({"echo", "it's", "$HOME", "a\nb", "", "*"});
    j.runner = shower;
    std::string script = job_script(j);
    CHECK(script.starts_with("#!/bin/sh\n"));
    std::string path = dir / "job.sh";
    std::ofstream(path) << script;
    auto shown = run_process({"sh", path});
    CHECK(shown.exit_code == 0);
    CHECK(shown.out == "</state/slurm><--><echo><it's><$HOME><a\nb><><*>");
}

TEST_CASE("sbatch gets the task's cwd, files, name, a time limit above its timeout, and the pool's options",
          "[unit][slurm]") {
    JobRequest j = request({"true"});
    j.timeout_ms = 61000;  // 1 min 1 s: two whole minutes, and one more
    PoolSettings s{"debug", "proj", {"--qos=low", "--mem=1G"}};
    auto a = sbatch_argv("/usr/bin/sbatch", j, s);
    std::vector<std::string> want{"/usr/bin/sbatch",
                                  "--parsable",
                                  "--job-name=mpctl-1",
                                  "--chdir=/work dir",
                                  "--output=/state/output/0/1.stdout",
                                  "--error=/state/output/0/1.stderr",
                                  "--open-mode=append",
                                  "--input=/dev/null",
                                  "--partition=debug",
                                  "--account=proj",
                                  "--time=3",
                                  "--qos=low",
                                  "--mem=1G",
                                  "/state/slurm/task-1-1.sh"};
    CHECK(a == want);
    j.timeout_ms.reset();
    j.cpus = 4;
    j.mem = (uint64_t{1} << 30) + 1;  // a byte over 1 GiB: 1025 MiB, never less than asked
    j.gpus = 2;
    auto r = sbatch_argv("sbatch", j, PoolSettings{});
    for (const char* want : {"--cpus-per-task=4", "--mem=1025M", "--gpus=2"}) {
        CHECK(std::find(r.begin(), r.end(), want) != r.end());
    }
    j.cpus.reset();
    j.mem.reset();
    j.gpus.reset();
    j.stdin_path = "/in put";
    auto b = sbatch_argv("sbatch", j, PoolSettings{});
    CHECK(std::find(b.begin(), b.end(), "--input=/in put") != b.end());
    CHECK(std::none_of(b.begin(), b.end(), [](const std::string& w) {
        return w.starts_with("--time") || w.starts_with("--partition") || w.starts_with("--account") ||
               w.starts_with("--dependency") || w.starts_with("--kill-on-invalid-dep");
    }));
}

TEST_CASE("a job held behind others runs after they all succeed and is cancelled by Slurm if one fails",
          "[unit][slurm]") {
    JobRequest j = request({"true"});
    j.after = {"12", "13_4"};
    auto a = sbatch_argv("sbatch", j, PoolSettings{{}, {}, {"--qos=low"}});
    auto dep = std::find(a.begin(), a.end(), "--dependency=afterok:12:13_4");
    REQUIRE(dep != a.end());
    CHECK(*(dep + 1) == "--kill-on-invalid-dep=yes");
    CHECK(std::find(dep, a.end(), "--qos=low") != a.end());  // the pool's own options after mpctl's
    CHECK(owned_option("--dependency=afterany:1") == "--dependency");
    CHECK(owned_option("--kill-on-invalid-dep=no") == "--kill-on-invalid-dep");
}

TEST_CASE("sbatch --parsable's id is read with or without a cluster, after warnings, and nothing else is one",
          "[unit][slurm]") {
    CHECK(parse_sbatch_id("42\n") == 42);
    CHECK(parse_sbatch_id("42;cluster\n") == 42);
    CHECK(parse_sbatch_id("sbatch: warning: something\n17\n") == 17);
    CHECK_FALSE(parse_sbatch_id(""));
    CHECK_FALSE(parse_sbatch_id("Submitted batch job 42\n"));
    CHECK_FALSE(parse_sbatch_id("0\n"));
    CHECK_FALSE(parse_sbatch_id("-3\n"));
    CHECK_FALSE(parse_sbatch_id("99999999999999999999999\n"));
}

TEST_CASE("a job status round-trips, and anything else is refused saying why", "[unit][slurm]") {
    JobStatus exited;
    exited.exit_code = 3;
    exited.started_ms = 1000;
    exited.ended_ms = 2500;
    auto back = parse_status(format_status(exited));
    REQUIRE(back);
    CHECK(back->exit_code == 3);
    CHECK_FALSE(back->signal);
    CHECK(back->started_ms == 1000);
    CHECK(back->ended_ms == 2500);
    JobStatus killed;
    killed.signal = 9;
    auto k = parse_status(format_status(killed));
    REQUIRE(k);
    CHECK(k->signal == 9);
    CHECK_FALSE(k->exit_code);
    for (const char* bad : {"", "garbage\n", "mpctl-job 2 exit=0 start=1 end=2", "mpctl-job 1 exit=0 start=1",
                            "mpctl-job 1 exit=0 signal=9 start=1 end=2", "mpctl-job 1 exit=256 start=1 end=2",
                            "mpctl-job 1 signal=0 start=1 end=2", "mpctl-job 1 exit=x start=1 end=2",
                            "mpctl-job 1 exit=1 start=1 end=2 more=3", "mpctl-job 1 exit start=1 end=2"}) {
        INFO(bad);
        auto r = parse_status(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().starts_with("not a job status"));
    }
}

TEST_CASE("a pipeline job's status says how each stage ended, and a stage left out or twice is refused",
          "[unit][slurm]") {
    JobStatus p;
    p.exit_code = 2;
    p.started_ms = 1;
    p.ended_ms = 2;
    p.stages = {{0, std::nullopt}, {std::nullopt, 13}, {2, std::nullopt}};
    std::string text = format_status(p);
    CHECK(text == "mpctl-job 1 exit=2 start=1 end=2 stages=3 exit0=0 signal1=13 exit2=2\n");
    auto back = parse_status(text);
    REQUIRE(back);
    REQUIRE(back->stages.size() == 3);
    CHECK((back->stages[0].exit_code == 0 && !back->stages[0].signal));
    CHECK((back->stages[1].signal == 13 && !back->stages[1].exit_code));
    CHECK(back->stages[2].exit_code == 2);
    for (const char* bad :
         {"mpctl-job 1 exit=0 start=1 end=2 stages=2 exit0=0",
          "mpctl-job 1 exit=0 start=1 end=2 stages=2 exit0=0 exit0=0 exit1=0",
          "mpctl-job 1 exit=0 start=1 end=2 stages=2 exit0=0 signal0=9 exit1=0",
          "mpctl-job 1 exit=0 start=1 end=2 stages=2 exit0=0 exit2=0",
          "mpctl-job 1 exit=0 start=1 end=2 exit0=0", "mpctl-job 1 exit=0 start=1 end=2 stages=1",
          "mpctl-job 1 exit=0 start=1 end=2 stages=65",
          "mpctl-job 1 exit=0 start=1 end=2 stages=2 exit0=256 exit1=0",
          "mpctl-job 1 exit=0 start=1 end=2 stages=2 exit0=0 signal1=0"}) {
        INFO(bad);
        CHECK_FALSE(parse_status(bad));
    }
}

TEST_CASE("squeue's lines give each job's and each array element's state, skipping ranges and noise",
          "[unit][slurm]") {
    auto jobs = parse_squeue(
        "12 RUNNING\n  13 PENDING\n14_2 RUNNING\n14_[3-9%2] PENDING\nslurm_load_jobs error: x\n\n"
        "15 CANCELLED\n_3 RUNNING\n16_ RUNNING\n");
    CHECK(jobs.size() == 4);
    CHECK(jobs.at("12") == "RUNNING");
    CHECK(jobs.at("13") == "PENDING");
    CHECK(jobs.at("14_2") == "RUNNING");
    CHECK(jobs.at("15") == "CANCELLED");
    CHECK(is_job_key("7"));
    CHECK(is_job_key("7_0"));
    CHECK_FALSE(is_job_key("7_"));
    CHECK_FALSE(is_job_key("_7"));
    CHECK_FALSE(is_job_key("7_1_2"));
    CHECK_FALSE(is_job_key("../7"));
    CHECK_FALSE(is_job_key(""));
    CHECK_FALSE(ended_state("PENDING"));
    CHECK_FALSE(ended_state("RUNNING"));
    CHECK_FALSE(ended_state("COMPLETING"));
    CHECK(ended_state("COMPLETED"));
    CHECK(ended_state("CANCELLED"));
    CHECK(ended_state("NODE_FAIL"));
}

TEST_CASE("a job that ended without a status ends its task as Slurm's state tells", "[unit][slurm]") {
    auto c = without_status("7", "CANCELLED");
    CHECK(c.signal == 15);
    CHECK(c.why == "Slurm job 7 was cancelled outside mpctl (scancel)");
    CHECK(without_status("7", "TIMEOUT").signal == 15);
    auto node = without_status("7", "NODE_FAIL");
    CHECK(node.signal == 0);  // how its command ended cannot be told
    CHECK(node.why.find("its node failed") != std::string::npos);
    CHECK(without_status("7", "").why == "Slurm job 7 is no longer known to Slurm and left no status");
    CHECK(without_status("7_3", "CANCELLED").why == "Slurm job 7_3 was cancelled outside mpctl (scancel)");
    CHECK(status_path("/d", "7") == "/d/job-7.status");
    CHECK(started_path("/d", "7") == "/d/job-7.started");
    CHECK(status_path("/d", "7_3") == "/d/job-7_3.status");
}

TEST_CASE("jobs are found again by the comment mpctl gave them, and Slurm being down is told from a refusal",
          "[unit][slurm]") {
    auto made = parse_comments(
        "12 mpctl-77-1-task-3.1\n13 (null)\n14 someone else's words\nnoise\n20_[0-9] mpctl-77-2-array-10\n"
        "21_4 mpctl-77-3-array-5\n");
    CHECK(made.size() == 4);
    CHECK(made.at("mpctl-77-1-task-3.1") == 12);
    CHECK(made.at("(null)") == 13);
    CHECK(made.at("mpctl-77-2-array-10") == 20);  // a pending array, not split yet
    CHECK(made.at("mpctl-77-3-array-5") == 21);   // one of an array's elements
    JobRequest j = request({"true"});
    j.comment = "mpctl-77-1-task-3.1";
    auto a = sbatch_argv("sbatch", j, PoolSettings{});
    CHECK(std::find(a.begin(), a.end(), "--comment=mpctl-77-1-task-3.1") != a.end());
    CHECK(controller_unreachable(
        "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
        "(connect failure)\n"));
    CHECK(
        controller_unreachable("sbatch: error: Batch job submission failed: Socket timed out on send/recv "
                               "operation\n"));
    CHECK_FALSE(
        controller_unreachable("sbatch: error: Batch job submission failed: Invalid partition name "
                               "specified\n"));
}

TEST_CASE("a pool's sbatch options may not be the ones mpctl tracks its jobs by", "[unit][slurm]") {
    CHECK(owned_option("--array=0-3") == "--array");
    CHECK(owned_option("--output=/x") == "--output");
    CHECK(owned_option("--wait") == "--wait");
    CHECK_FALSE(owned_option("--waits"));
    CHECK_FALSE(owned_option("--qos=low"));
    CHECK_FALSE(owned_option("--output-file-like-option"));
}

TEST_CASE("an array's script runs each element's command with its own files, by SLURM_ARRAY_TASK_ID",
          "[unit][slurm]") {
    mpctl::test::TempDir dir;
    std::string shower = dir / "show args";
    std::ofstream(shower) << "#!/bin/sh\nfor a; do printf '<%s>' \"$a\"; done\n";
    REQUIRE(::chmod(shower.c_str(), 0755) == 0);
    JobRequest j = request({});
    j.runner = shower;
    std::vector<Element> elements{{{"echo", "it's one"}, "/o 0", "/e 0"},
                                  {{"printf", "%s\n", "$x"}, "/o1", "/e1"}};
    j.array_size = elements.size();
    std::string path = dir / "array.sh";
    std::ofstream(path) << array_script(j, elements);
    auto run = [&](const std::string& index) {
        return run_process({"sh", path}, env({{"SLURM_ARRAY_TASK_ID", index}}));
    };
    auto first = run("0");
    CHECK(first.out == "</state/slurm><--element><--stdout></o 0><--stderr></e 0><--><echo><it's one>");
    CHECK(first.exit_code == 0);
    CHECK(run("1").out == "</state/slurm><--element><--stdout></o1><--stderr></e1><--><printf><%s\n><$x>");
    auto none = run("2");
    CHECK(none.err == "mpctl: no element 2 in this array\n");
    CHECK(none.exit_code == 2);

    auto a = sbatch_argv("sbatch", j, PoolSettings{});
    CHECK(std::find(a.begin(), a.end(), "--array=0-1") != a.end());
    // The elements' own files are the runner's to open: Slurm's are the runner's words, one file each.
    CHECK(std::find(a.begin(), a.end(), "--output=/state/slurm/array-%A_%a.log") != a.end());
    CHECK(std::find(a.begin(), a.end(), "--error=/state/slurm/array-%A_%a.log") != a.end());
    CHECK(std::none_of(a.begin(), a.end(),
                       [](const std::string& s) { return s.find("/o 0") != std::string::npos; }));
    CHECK(element_log_path("/state/slurm", "12_3") == "/state/slurm/array-12_3.log");
    // A throttle below the array's size is Slurm's %N; one that is not would bound nothing.
    j.array_throttle = 1;
    auto t = sbatch_argv("sbatch", j, PoolSettings{});
    CHECK(std::find(t.begin(), t.end(), "--array=0-1%1") != t.end());
    j.array_throttle = 2;
    auto u = sbatch_argv("sbatch", j, PoolSettings{});
    CHECK(std::find(u.begin(), u.end(), "--array=0-1") != u.end());
}

TEST_CASE(
    "stand-in pids tell plain jobs from array elements, whose array and index the journaled start keeps",
    "[unit][slurm]") {
    using namespace mpctl::daemon;
    int plain = job_pid(4242);
    CHECK(is_job_pid(plain));
    CHECK_FALSE(is_element_pid(plain));
    CHECK(job_key(plain, 1) == "4242");
    CHECK(job_key(job_pid(k_max_job_id), 1) == std::to_string(k_max_job_id));
    int element = element_pid(7);
    CHECK(is_job_pid(element));
    CHECK(is_element_pid(element));
    CHECK(element_pid(k_max_element_handle) == 2147483647);  // the last int
    uint64_t start = element_start(67043327, 4000000);
    CHECK(start != 0);
    CHECK(job_key(element, start) == "67043327_4000000");
    CHECK(job_key(element, element_start(12, 0)) == "12_0");
    CHECK(job_key(element, 0).empty());  // a journal that kept no start
    int64_t array = 0, index = 0;
    CHECK_FALSE(element_of(1, array, index));
    CHECK_FALSE(is_job_pid(4194304));  // the kernel's largest pid_max
}

TEST_CASE("the runner of an array element opens its own files and writes the status under the element's key",
          "[unit][slurm]") {
    mpctl::test::TempDir dir;
    std::string runner = std::string(MPCTL_TEST_BIN_DIR) + "/mpctl-slurm-job";
    std::string out = dir / "out", err = dir / "err";
    // As Slurm starts element 3 of array 41: its environment names the array and the index.
    auto ran = run_process(
        {runner, dir.path(), "--element", "--stdout", out, "--stderr", err, "--", "sh", "-c",
         "echo to-out; echo to-err >&2; exit 7"},
        env({{"SLURM_JOB_ID", "99"}, {"SLURM_ARRAY_JOB_ID", "41"}, {"SLURM_ARRAY_TASK_ID", "3"}}));
    CHECK(ran.exit_code == 7);  // as its command ended, so Slurm's records agree
    auto read = [](const std::string& path) {
        return mpctl::common::read_file(path).value_or("");
    };
    CHECK(read(out) == "to-out\n");
    CHECK(read(err) == "to-err\n");
    auto st = parse_status(read(dir / "job-41_3.status"));
    REQUIRE(st);
    CHECK(st->exit_code == 7);
    CHECK(::access((dir / "job-41_3.started").c_str(), F_OK) == 0);
    CHECK(::access((dir / "job-99.status").c_str(), F_OK) != 0);

    // Without the array's variables an element cannot tell its key: it says so and runs nothing.
    auto bare = run_process({runner, dir.path(), "--element", "--", "touch", dir / "ran"},
                            env({{"SLURM_JOB_ID", "99"}}, {"SLURM_ARRAY_JOB_ID"}));
    CHECK(bare.exit_code == 2);
    CHECK_THAT(bare.err, Catch::Matchers::Contains("not in a Slurm job array"));
    CHECK(::access((dir / "ran").c_str(), F_OK) != 0);
}

TEST_CASE(
    "the runner runs a pipeline's stages connected, each stage's stderr in its file, and weighs it as "
    "pipefail",
    "[unit][slurm]") {
    mpctl::test::TempDir dir;
    JobRequest j = request({});
    j.runner = std::string(MPCTL_TEST_BIN_DIR) + "/mpctl-slurm-job";
    j.status_dir = dir.path();
    std::string e0 = dir / "e0", e1 = dir / "e1", e2 = dir / "e2";
    // yes dies of SIGPIPE once head has its line (forgiven before the last stage); the middle stage's
    // exit 3 decides, the last one succeeds.
    j.pipeline = {{{"yes", "it's"}, e0},
                  {{"sh", "-c", "head -n 2; echo middle >&2; exit 3"}, e1},
                  {{"sh", "-c", "cat; echo last >&2"}, e2}};
    std::string script = dir / "job.sh";
    std::ofstream(script) << job_script(j);
    auto ran = run_process({"sh", script}, env({{"SLURM_JOB_ID", "77"}}));
    CHECK(ran.exit_code == 3);  // as mpctl weighs it, so that Slurm's afterok agrees
    CHECK(ran.out == "it's\nit's\n");
    auto read = [](const std::string& path) {
        return mpctl::common::read_file(path).value_or("");
    };
    CHECK(read(e0).empty());
    CHECK(read(e1) == "middle\n");
    CHECK(read(e2) == "last\n");
    auto st = parse_status(read(dir / "job-77.status"));
    REQUIRE(st);
    CHECK(st->exit_code == 3);
    REQUIRE(st->stages.size() == 3);
    CHECK(st->stages[0].signal == SIGPIPE);
    CHECK(st->stages[1].exit_code == 3);
    CHECK(st->stages[2].exit_code == 0);

    // A stage that is not there is 127 in its own stderr; the others run and end as they do.
    j.pipeline = {{{"echo", "x"}, e0}, {{"no-such-command-here"}, e1}};
    std::ofstream(script, std::ios::trunc) << job_script(j);
    auto missing = run_process({"sh", script}, env({{"SLURM_JOB_ID", "78"}}));
    CHECK(missing.exit_code == 127);
    CHECK_THAT(read(e1), Catch::Matchers::Contains("command not found"));
    auto st2 = parse_status(read(dir / "job-78.status"));
    REQUIRE(st2);
    REQUIRE(st2->stages.size() == 2);
    CHECK(st2->stages[1].exit_code == 127);

    // Word counts that do not add up are refused before anything runs.
    auto bad =
        run_process({j.runner, dir.path(), "--stage", "2", e0, "--stage", "2", e1, "--", "a", "b", "c"},
                    env({{"SLURM_JOB_ID", "79"}}));
    CHECK(bad.exit_code == 2);
    CHECK_THAT(bad.err, Catch::Matchers::Contains("usage"));
}
