// What the daemon and a Slurm job say to each other (daemon/slurm/job_files): the script, sbatch's arguments,
// and the readers of sbatch's, squeue's and the runner's output, without Slurm. The script is read back by a
// real /bin/sh.

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <vector>

#include <catch2/catch.hpp>

#include <mpctl/daemon/slurm/job_files.hpp>

#include "temp_dir.hpp"

using namespace mpctl::daemon::slurm;

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
    std::FILE* p = ::popen(("sh '" + path + "'").c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buf[256];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        out.append(buf, n);
    }
    CHECK(::pclose(p) == 0);
    CHECK(out == "</state/slurm><--><echo><it's><$HOME><a\nb><><*>");
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
        return w.starts_with("--time") || w.starts_with("--partition") || w.starts_with("--account");
    }));
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

TEST_CASE("squeue's lines give each job's state, skipping array elements and noise", "[unit][slurm]") {
    auto jobs =
        parse_squeue("12 RUNNING\n  13 PENDING\n14_2 RUNNING\nslurm_load_jobs error: x\n\n15 CANCELLED\n");
    CHECK(jobs.size() == 3);
    CHECK(jobs.at(12) == "RUNNING");
    CHECK(jobs.at(13) == "PENDING");
    CHECK(jobs.at(15) == "CANCELLED");
    CHECK_FALSE(ended_state("PENDING"));
    CHECK_FALSE(ended_state("RUNNING"));
    CHECK_FALSE(ended_state("COMPLETING"));
    CHECK(ended_state("COMPLETED"));
    CHECK(ended_state("CANCELLED"));
    CHECK(ended_state("NODE_FAIL"));
}

TEST_CASE("a job that ended without a status ends its task as Slurm's state tells", "[unit][slurm]") {
    auto c = without_status(7, "CANCELLED");
    CHECK(c.signal == 15);
    CHECK(c.why == "Slurm job 7 was cancelled outside mpctl (scancel)");
    CHECK(without_status(7, "TIMEOUT").signal == 15);
    auto node = without_status(7, "NODE_FAIL");
    CHECK(node.signal == 0);  // how its command ended cannot be told
    CHECK(node.why.find("its node failed") != std::string::npos);
    CHECK(without_status(7, "").why == "Slurm job 7 is no longer known to Slurm and left no status");
    CHECK(status_path("/d", 7) == "/d/job-7.status");
    CHECK(started_path("/d", 7) == "/d/job-7.started");
}

TEST_CASE("jobs are found again by the comment mpctl gave them, and Slurm being down is told from a refusal",
          "[unit][slurm]") {
    auto made = parse_comments("12 mpctl-77-1-task-3.1\n13 (null)\n14 someone else's words\nnoise\n");
    CHECK(made.size() == 2);
    CHECK(made.at("mpctl-77-1-task-3.1") == 12);
    CHECK(made.at("(null)") == 13);
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
