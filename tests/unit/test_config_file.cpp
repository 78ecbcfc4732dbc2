// load_config_file: every key of mpctld.toml, and errors that name the file, the line and the key.

#include <catch2/catch.hpp>

#include <mpctl/daemon/config.hpp>

#include "temp_dir.hpp"

using mpctl::daemon::DaemonConfig;
using mpctl::daemon::load_config_file;
using mpctl::test::TempDir;

namespace {

// The error of loading CONTENT, or "" if it loads.
std::string config_error(const TempDir& t, const std::string& content) {
    std::string path = t.write("mpctld.toml", content);
    DaemonConfig config;
    auto r = load_config_file(path, true, config);
    return r ? std::string() : r.error().message();
}

}  // namespace

TEST_CASE("the config file takes every setting, the socket, state dir and log rotation too",
          "[unit][config]") {
    TempDir t;
    std::string path = t.write("mpctld.toml",
                               "workers = 3\n"
                               "log_level = \"debug\"\n"
                               "log_max_size = \"2M\"\n"
                               "log_keep = 5\n"
                               "socket = \"/srv/m/mpctld.sock\"\n"
                               "state_dir = \"/srv/m/state\"\n"
                               "listen = [\"tcp://127.0.0.1:1\", \"tcp://[::1]:2\"]\n"
                               "[pools.gpu]\n"
                               "workers = 2\n");
    DaemonConfig config;
    REQUIRE(load_config_file(path, true, config));
    CHECK(config.workers == 3);
    CHECK(config.log_level == "debug");
    CHECK(config.log_max_size == 2 * 1024 * 1024);
    CHECK(config.log_keep == 5);
    CHECK(config.socket_path == "/srv/m/mpctld.sock");
    CHECK(config.state_dir == "/srv/m/state");
    CHECK(config.listen.size() == 2);
    CHECK(config.pools.at("gpu") == 2);

    DaemonConfig bytes;
    REQUIRE(load_config_file(t.write("b.toml", "log_max_size = 0\n"), true, bytes));
    CHECK(bytes.log_max_size == 0);
}

TEST_CASE("a bad config value is reported with the file, its line and its key", "[unit][config]") {
    TempDir t;
    std::string path = t / "mpctld.toml";
    CHECK(config_error(t, "# workers\n\nworkers = 0\n") ==
          "config file " + path + ", line 3: workers must be an integer from 1 to 100000");
    CHECK(config_error(t, "log_keep = 1\nsocket = \"relative.sock\"\n") ==
          "config file " + path + ", line 2: socket must be an absolute path");
    CHECK_THAT(config_error(t, "log_max_size = 100\n"),
               Catch::Matchers::StartsWith("config file " + path + ", line 1: log_max_size must be"));
    CHECK_THAT(config_error(t, "listen = [\n  \"tcp://h:1\",\n  7,\n]\n"),
               Catch::Matchers::StartsWith("config file " + path + ", line 3: listen must be"));
    CHECK_THAT(config_error(t, "workers = 2\n[pools.gpu]\nworkers = 0\n"),
               Catch::Matchers::StartsWith("config file " + path + ", line 3: pools.gpu must be"));
}

TEST_CASE("an unknown config key is reported with its line and the key it may have meant", "[unit][config]") {
    TempDir t;
    std::string path = t / "mpctld.toml";
    CHECK(config_error(t, "workers = 2\nlog_levle = \"info\"\n") ==
          "config file " + path + ", line 2: unknown setting \"log_levle\" (did you mean \"log_level\"?)");
    CHECK(config_error(t, "colour = 1\n") == "config file " + path + ", line 1: unknown setting \"colour\"");
    CHECK(config_error(t, "[pools.gpu]\nworkers = 1\nwrokers = 2\n") ==
          "config file " + path +
              ", line 3: unknown setting \"pools.gpu.wrokers\" (did you mean \"pools.gpu.workers\"?)");
}

TEST_CASE("a config file that is not TOML is reported with the line of the error", "[unit][config]") {
    TempDir t;
    CHECK_THAT(config_error(t, "workers = 2\n\nthis is not toml [\n"),
               Catch::Matchers::StartsWith("config file " + (t / "mpctld.toml") + ", line 3: "));
}

TEST_CASE("a missing config file is an error only when it was named", "[unit][config]") {
    TempDir t;
    DaemonConfig config;
    CHECK(load_config_file(t / "nope.toml", false, config));
    auto r = load_config_file(t / "nope.toml", true, config);
    REQUIRE_FALSE(r);
    CHECK(r.error().message() == "config file " + (t / "nope.toml") + ": No such file or directory");
}

TEST_CASE("a config file's pool may be backed by Slurm, with the rules of pool.set",
          "[unit][config][slurm]") {
    TempDir t;
    std::string path = t.write("mpctld.toml",
                               "[pools.hpc]\n"
                               "workers = 100\n"
                               "backend = \"slurm\"\n"
                               "partition = \"debug\"\n"
                               "account = \"physics\"\n"
                               "slurm_args = [\"--qos=low\", \"--constraint=avx2\"]\n"
                               "[pools.here]\n"
                               "workers = 2\n"
                               "backend = \"local\"\n");
    DaemonConfig config;
    REQUIRE(load_config_file(path, true, config));
    CHECK(config.pools.at("hpc") == 100);
    REQUIRE(config.pool_backends.contains("hpc"));
    const auto& hpc = config.pool_backends.at("hpc");
    CHECK(hpc.partition == "debug");
    CHECK(hpc.account == "physics");
    CHECK(hpc.args == std::vector<std::string>{"--qos=low", "--constraint=avx2"});
    CHECK_FALSE(config.pool_backends.contains("here"));

    std::string at = "config file " + (t / "mpctld.toml") + ", line ";
    CHECK(config_error(t, "[pools.hpc]\nworkers = 1\nbackend = \"cloud\"\n") ==
          at + "1: pools.hpc.backend: \"local\" or \"slurm\"");
    CHECK(config_error(t, "[pools.hpc]\nworkers = 1\npartition = \"debug\"\n") ==
          at + "1: pools.hpc.backend: partition, account and slurm_args are for a Slurm pool (backend "
               "\"slurm\")");
    CHECK(
        config_error(t, "[pools.hpc]\nworkers = 1\nbackend = \"slurm\"\nslurm_args = [\"--array=0-9\"]\n") ==
        at + "1: pools.hpc.slurm_args: --array is mpctl's to set (it tracks each task's job by them)");
    CHECK(
        config_error(t, "[pools.hpc]\nworkers = 1\nbackend = \"slurm\"\nslurm_args = [\"--qos=low\", 3]\n") ==
        at + "4: pools.hpc.slurm_args must be an array of strings");
    CHECK(config_error(t, "[pools.hpc]\nworkers = 1\nbackend = \"slurm\"\npartition = \"a b\"\n") ==
          at + "1: pools.hpc.partition: a Slurm name, 1-128 of letters, digits, '_', '.', '+' and '-'");
    CHECK(config_error(t, "[pools.default]\nworkers = 1\nbackend = \"slurm\"\n") ==
          at + "1: pools.default.backend: the default pool runs its tasks here");
    DaemonConfig checked;
    REQUIRE(
        load_config_file(t.write("c.toml", "slurm_shared_check = 'srun --time=1 test -d'\n"), true, checked));
    CHECK(checked.slurm_shared_check == "srun --time=1 test -d");
    CHECK(config_error(t, "slurm_shared_check = 3\n") ==
          at + "1: slurm_shared_check must be a shell command (given the state dir as \"$1\")");
    CHECK(config_error(t, "[pools.hpc]\nworkers = 1\npartiton = \"x\"\n") ==
          at + "3: unknown setting \"pools.hpc.partiton\" (did you mean \"pools.hpc.partition\"?)");
}
