// Parsing and validating task specs: every field's rules, and the error each violation gets.

#include <map>
#include <string>
#include <sys/resource.h>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/task_spec.hpp>

using mpctl::proto::ErrorCode;
using mpctl::proto::k_max_input_chars;
using mpctl::proto::merge_spec_defaults;
using mpctl::proto::parse_task_spec;
using mpctl::proto::RequestError;
using mpctl::proto::TaskSpec;
using nlohmann::json;

namespace {

using StringMap = std::map<std::string, std::string>;

// The message of the invalid_params error that parsing VALUE throws; fails if it parses.
std::string rejection(const json& value, const std::string& path = "params") {
    try {
        (void)parse_task_spec(value, path);
    } catch (const RequestError& e) {
        CHECK(e.code() == ErrorCode::invalid_params);
        return e.what();
    }
    FAIL("the spec was accepted: " << value.dump());
    return {};
}

// A minimal valid spec with FIELD set to VALUE.
json with(const char* field, json value) {
    json j = {{"argv", json::array({"true"})}};
    j[field] = std::move(value);
    return j;
}

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.rfind(prefix, 0) == 0;
}

}  // namespace

TEST_CASE("a minimal argv spec gets the documented defaults", "[unit][task_spec]") {
    TaskSpec s = parse_task_spec({{"argv", {"make", "-j4"}}});
    CHECK(s.argv == std::vector<std::string>{"make", "-j4"});
    CHECK_FALSE(s.shell);
    CHECK(s.cwd.empty());
    CHECK_FALSE(s.env);
    CHECK_FALSE(s.name);
    CHECK(s.labels.empty());
    CHECK_FALSE(s.stdin_path);
    CHECK_FALSE(s.timeout_s);
    CHECK(s.kill_after_s == mpctl::proto::k_default_kill_after_s);
    CHECK(s.kill_after_s == 5.0);
    CHECK(s.retries == 0);
    CHECK(s.retry_delay_s == 0);
    CHECK(s.after.empty());
    CHECK(s.pool == "default");
    CHECK(s.priority == 0);
}

TEST_CASE("a shell spec keeps the string and has no argv", "[unit][task_spec]") {
    TaskSpec s = parse_task_spec({{"shell", "echo hi | wc -c"}});
    REQUIRE(s.shell);
    CHECK(*s.shell == "echo hi | wc -c");
    CHECK(s.argv.empty());
}

TEST_CASE("a spec with more than one of argv, shell and pipeline is refused", "[unit][task_spec]") {
    const std::string msg = "params: give one of argv, shell and pipeline";
    CHECK(rejection({{"argv", {"ls"}}, {"shell", "ls"}}) == msg);
    CHECK(rejection({{"argv", {"ls"}}, {"pipeline", {{"a"}, {"b"}}}}) == msg);
    CHECK(rejection({{"shell", "ls"}, {"pipeline", {{"a"}, {"b"}}}}) == msg);
}

TEST_CASE("a spec with none of argv, shell and pipeline is refused", "[unit][task_spec]") {
    const std::string msg =
        "params: a task needs argv (an array of strings), shell (a string) or pipeline (argv arrays)";
    CHECK(rejection(json::object()) == msg);
    CHECK(rejection({{"argv", nullptr}}) == msg);
}

TEST_CASE("a pipeline keeps its stages in order and shows them joined by |", "[unit][task_spec]") {
    TaskSpec s = parse_task_spec({{"pipeline", {{"printf", "a b"}, {"tr", "a", "b"}, {"wc", "-c"}}}});
    REQUIRE(s.pipeline.size() == 3);
    CHECK(s.argv.empty());
    CHECK(s.stage_argvs() == s.pipeline);
    CHECK(s.display_command() == "printf 'a b' | tr a b | wc -c");
    CHECK(to_json(s)["pipeline"] == json({{"printf", "a b"}, {"tr", "a", "b"}, {"wc", "-c"}}));
}

TEST_CASE("a pipeline needs 2 to 64 stages, each naming a command", "[unit][task_spec]") {
    const std::string count = "params.pipeline: expected an array of 2 to 64 argv arrays";
    CHECK(rejection({{"pipeline", {{"ls"}}}}) == count);
    CHECK(rejection({{"pipeline", "ls | wc"}}) == count);
    CHECK(rejection({{"pipeline", json::array()}}) == count);
    json many = json::array();
    for (int i = 0; i < 65; ++i) {
        many.push_back({"cat"});
    }
    CHECK(rejection({{"pipeline", many}}) == count);
    CHECK(rejection({{"pipeline", {{"ls"}, json::array()}}}) == "params.pipeline[1]: must name a command");
    CHECK(rejection({{"pipeline", {{"ls"}, "wc"}}}) == "params.pipeline[1]: expected an array of strings");
}

TEST_CASE("shell and argv tasks are one stage", "[unit][task_spec]") {
    using Stages = std::vector<std::vector<std::string>>;
    const Stages shell = parse_task_spec({{"shell", "echo hi"}}).stage_argvs();
    CHECK(shell == Stages{{"/bin/sh", "-c", "echo hi"}});
    const Stages argv = parse_task_spec({{"argv", {"ls", "-l"}}}).stage_argvs();
    CHECK(argv == Stages{{"ls", "-l"}});
}

TEST_CASE("process limits are parsed, range-checked and written back", "[unit][task_spec]") {
    TaskSpec s = parse_task_spec({{"argv", {"x"}},
                                  {"nice", 10},
                                  {"umask", "027"},
                                  {"rlimits", {{"nofile", 64}, {"core", 0}, {"as", "unlimited"}}},
                                  {"max_output", 1024},
                                  {"cgroup", true}});
    CHECK(s.nice == 10);
    CHECK(s.umask == 027u);
    CHECK(s.rlimits.at("nofile") == 64u);
    CHECK(s.rlimits.at("core") == 0u);
    CHECK(s.rlimits.at("as") == RLIM_INFINITY);
    CHECK(s.max_output == 1024u);
    CHECK(s.cgroup);
    json j = to_json(s);
    CHECK(j["nice"] == 10);
    CHECK(j["umask"] == 027);
    CHECK(j["rlimits"] == json({{"nofile", 64}, {"core", 0}, {"as", "unlimited"}}));
    CHECK(parse_task_spec(j).rlimits == s.rlimits);
    CHECK(parse_task_spec({{"argv", {"x"}}, {"umask", 18}}).umask == 022u);
    // An integer is a number without a fraction, however it is written (JSON Schema counts 18.0 as one).
    CHECK(parse_task_spec({{"argv", {"x"}}, {"umask", 18.0}}).umask == 022u);
    CHECK(parse_task_spec({{"argv", {"x"}}, {"umask", "0777"}}).umask == 0777u);

    CHECK(rejection({{"argv", {"x"}}, {"nice", 20}}) == "params.nice: must be between -20 and 19");
    CHECK(rejection({{"argv", {"x"}}, {"nice", -21}}) == "params.nice: must be between -20 and 19");
    const std::string umask = "params.umask: expected an octal string (\"022\") or an integer up to 0777";
    CHECK(rejection({{"argv", {"x"}}, {"umask", "08"}}) == umask);
    CHECK(rejection({{"argv", {"x"}}, {"umask", 512}}) == umask);
    CHECK(rejection({{"argv", {"x"}}, {"umask", ""}}) == umask);
    CHECK(rejection({{"argv", {"x"}}, {"umask", 18.5}}) == umask);
    CHECK(rejection({{"argv", {"x"}}, {"umask", "1000"}}) == umask);
    CHECK(rejection({{"argv", {"x"}}, {"rlimits", {{"files", 3}}}})
              .starts_with("params.rlimits.files: unknown limit"));
    CHECK(rejection({{"argv", {"x"}}, {"rlimits", {{"nofile", -1}}}}) ==
          "params.rlimits.nofile: must not be negative (or \"unlimited\")");
    CHECK(rejection({{"argv", {"x"}}, {"rlimits", 5}}) ==
          "params.rlimits: expected an object of limits (\"nofile\": 1024)");
    CHECK(rejection({{"argv", {"x"}}, {"max_output", -1}}) == "params.max_output: must not be negative");
}

TEST_CASE("stdin_fd and a stdin file exclude each other", "[unit][task_spec]") {
    CHECK(parse_task_spec({{"argv", {"cat"}}, {"stdin_fd", true}}).stdin_passed);
    CHECK(rejection({{"argv", {"cat"}}, {"stdin_fd", true}, {"stdin", "/etc/hostname"}}) ==
          "params: give either stdin or stdin_fd, not both");
}

TEST_CASE("input is base64 bytes for stdin, at most 64 KiB, and excludes a stdin file and stdin_fd",
          "[unit][task_spec]") {
    std::string bytes("a\0b\xff\n", 5);
    TaskSpec s = parse_task_spec({{"argv", {"cat"}}, {"input", "YQBi/wo="}});
    CHECK(s.input == bytes);
    CHECK(to_json(s).at("input") == "YQBi/wo=");  // as the journal keeps it
    CHECK(parse_task_spec(to_json(s)).input == bytes);
    CHECK(parse_task_spec({{"argv", {"cat"}}, {"input", ""}}).input == std::string());
    CHECK_FALSE(parse_task_spec({{"argv", {"cat"}}, {"input", nullptr}}).input.has_value());
    CHECK(parse_task_spec({{"argv", {"cat"}}, {"input", "aGk="}, {"stdin_fd", false}}).input == "hi");
    std::string most(k_max_input_chars, 'A');
    CHECK(parse_task_spec({{"argv", {"cat"}}, {"input", most}}).input->size() == most.size() / 4 * 3);
    CHECK(
        rejection({{"argv", {"cat"}}, {"input", most + "AAAA"}}) ==
        "params.input: at most 87384 characters (64 KiB; give more as a file with stdin, or with stdin_fd)");
    for (const char* bad : {"YQ", "YQ=", "Y===", "a b=", "aGk=aGk=", "\u00e9\u00e9\u00e9\u00e9"}) {
        INFO(bad);
        CHECK(rejection({{"argv", {"cat"}}, {"input", bad}}) ==
              "params.input: must be base64 (RFC 4648, with padding)");
    }
    CHECK(rejection({{"argv", {"cat"}}, {"input", "aGk="}, {"stdin", "/etc/hostname"}}) ==
          "params: give one of stdin, stdin_fd and input");
    CHECK(rejection({{"argv", {"cat"}}, {"input", "aGk="}, {"stdin_fd", true}}) ==
          "params: give one of stdin, stdin_fd and input");
    // A batch entry's own stdin, stdin_fd or input replaces the defaults' input, and the other way round.
    json defaults = {{"argv", {"cat"}}, {"input", "aGk="}};
    CHECK(parse_task_spec(merge_spec_defaults(defaults, {{"stdin", "/etc/hostname"}})).stdin_path ==
          "/etc/hostname");
    CHECK(parse_task_spec(merge_spec_defaults(defaults, {{"stdin_fd", true}})).stdin_passed);
    CHECK(parse_task_spec(merge_spec_defaults(defaults, json::object())).input == "hi");
    json file_default = {{"argv", {"cat"}}, {"stdin", "/etc/hostname"}};
    TaskSpec own = parse_task_spec(merge_spec_defaults(file_default, {{"input", "aGk="}}));
    CHECK((own.input == "hi" && !own.stdin_path));
}

TEST_CASE("an empty argv is refused, an empty command name is a command the spawn will not find",
          "[unit][task_spec]") {
    CHECK(rejection({{"argv", json::array()}}) == "params.argv: must name a command");
    CHECK(parse_task_spec({{"argv", {""}}}).argv == std::vector<std::string>{""});
    CHECK(parse_task_spec({{"argv", {"", "x"}}}).argv == std::vector<std::string>{"", "x"});
    CHECK(parse_task_spec({{"pipeline", {{"ls"}, {""}}}}).pipeline.at(1) == std::vector<std::string>{""});
}

TEST_CASE("empty arguments after the command are kept", "[unit][task_spec]") {
    TaskSpec s = parse_task_spec({{"argv", {"printf", "", "x"}}});
    CHECK(s.argv == std::vector<std::string>{"printf", "", "x"});
}

TEST_CASE("an empty shell string is refused", "[unit][task_spec]") {
    CHECK(rejection({{"shell", ""}}) == "params.shell: must not be empty");
}

TEST_CASE("argv must be an array of strings without NUL bytes", "[unit][task_spec]") {
    CHECK(rejection({{"argv", "ls -l"}}) == "params.argv: expected an array of strings");
    CHECK(rejection({{"argv", {"ls", 3}}}) == "params.argv[1]: expected a string");
    CHECK(rejection({{"argv", {"ls", std::string("a\0b", 3)}}}) ==
          "params.argv[1]: must not contain NUL characters");
    CHECK(rejection({{"shell", 5}}) == "params.shell: expected a string");
}

TEST_CASE("unknown fields are refused by name", "[unit][task_spec]") {
    CHECK(rejection(with("tiemout", 3)) == "params.tiemout: unknown field");
    CHECK(rejection(with("stdout", "/tmp/x")) == "params.stdout: unknown field");
}

TEST_CASE("error messages carry the given path prefix", "[unit][task_spec]") {
    CHECK(rejection(with("cwd", "rel"), "params.tasks[3]") ==
          "params.tasks[3].cwd: must be an absolute path");
    CHECK(rejection(with("bogus", 1), "params.tasks[0]") == "params.tasks[0].bogus: unknown field");
    CHECK(rejection(json::array(), "params.tasks[1]") == "params.tasks[1]: expected an object");
}

TEST_CASE("cwd must be absolute and is kept as given", "[unit][task_spec]") {
    CHECK(parse_task_spec(with("cwd", "/home/u/src")).cwd == "/home/u/src");
    CHECK(parse_task_spec(with("cwd", "/")).cwd == "/");
    // "" was taken for the default cwd until the schemas and the daemon were made to agree: it is not an
    // absolute path. Absent or null is the default.
    CHECK(rejection(with("cwd", "")) == "params.cwd: must be an absolute path");
    CHECK(parse_task_spec(with("cwd", nullptr)).cwd.empty());
    CHECK(rejection(with("cwd", "src")) == "params.cwd: must be an absolute path");
    CHECK(rejection(with("cwd", "./src")) == "params.cwd: must be an absolute path");
    CHECK(rejection(with("cwd", "~/src")) == "params.cwd: must be an absolute path");
    CHECK(rejection(with("cwd", 5)) == "params.cwd: expected a string");
}

TEST_CASE("a relative stdin path is resolved against cwd", "[unit][task_spec]") {
    json j = with("cwd", "/home/u");
    j["stdin"] = "data/in.txt";
    TaskSpec s = parse_task_spec(j);
    REQUIRE(s.stdin_path);
    CHECK(*s.stdin_path == "/home/u/data/in.txt");

    j["cwd"] = "/home/u/";
    CHECK(*parse_task_spec(j).stdin_path == "/home/u/data/in.txt");

    j["cwd"] = "/";
    j["stdin"] = "in";
    CHECK(*parse_task_spec(j).stdin_path == "/in");
}

TEST_CASE("an absolute stdin path is kept as given", "[unit][task_spec]") {
    json j = with("cwd", "/home/u");
    j["stdin"] = "/etc/hosts";
    CHECK(*parse_task_spec(j).stdin_path == "/etc/hosts");
    CHECK(*parse_task_spec(with("stdin", "/etc/hosts")).stdin_path == "/etc/hosts");
}

TEST_CASE("a relative stdin path without cwd is kept for the default cwd, an empty one is refused",
          "[unit][task_spec]") {
    // Refused until the schemas and the daemon were made to agree: whether an entry of a batch was valid
    // then depended on its defaults' cwd, which no schema of the entry could say.
    CHECK(parse_task_spec(with("stdin", "in.txt")).stdin_path == std::optional<std::string>("in.txt"));
    CHECK(rejection(with("stdin", "")) == "params.stdin: must be a path");
}

TEST_CASE("env is the whole environment as given", "[unit][task_spec]") {
    TaskSpec s = parse_task_spec(with("env", {{"PATH", "/usr/bin"}, {"EMPTY", ""}, {"EQ", "a=b=c"}}));
    REQUIRE(s.env);
    CHECK(*s.env == StringMap{{"PATH", "/usr/bin"}, {"EMPTY", ""}, {"EQ", "a=b=c"}});

    TaskSpec empty = parse_task_spec(with("env", json::object()));
    REQUIRE(empty.env);  // an empty environment is not the daemon's environment
    CHECK(empty.env->empty());
}

TEST_CASE("env variable names must be non-empty and free of '='", "[unit][task_spec]") {
    const std::string message = "params.env: variable names must be non-empty and contain no '='";
    CHECK(rejection(with("env", {{"", "x"}})) == message);
    CHECK(rejection(with("env", {{"A=B", "x"}})) == message);
    CHECK(rejection(with("env", {{"=A", "x"}})) == message);
}

TEST_CASE("env values must be strings without NUL bytes", "[unit][task_spec]") {
    CHECK(rejection(with("env", {{"A", 1}})) == "params.env.A: expected a string");
    json env = json::object();
    env["A"] = std::string("x\0y", 3);
    CHECK(rejection(with("env", env)) == "params.env.A: must not contain NUL characters");
    CHECK(rejection(with("env", json::array({"A=1"}))) == "params.env: expected an object of strings");
}

TEST_CASE("names are limited to 256 characters", "[unit][task_spec]") {
    CHECK(*parse_task_spec(with("name", std::string(256, 'n'))).name == std::string(256, 'n'));
    CHECK(rejection(with("name", std::string(257, 'n'))) == "params.name: at most 256 characters");
    // Characters, as JSON Schema's maxLength counts them: 256 accented letters are 512 bytes.
    std::string accented;
    for (int i = 0; i < 256; ++i) {
        accented += "\xC3\xA9";
    }
    CHECK(*parse_task_spec(with("name", accented)).name == accented);
    CHECK(rejection(with("name", accented + "n")) == "params.name: at most 256 characters");
}

TEST_CASE("label keys must be non-empty and free of '='", "[unit][task_spec]") {
    CHECK(parse_task_spec(with("labels", {{"team", "infra"}, {"k", ""}})).labels ==
          StringMap{{"team", "infra"}, {"k", ""}});
    CHECK(rejection(with("labels", {{"", "x"}})) ==
          "params.labels: keys must be non-empty and contain no '='");
    CHECK(rejection(with("labels", {{"a=b", "x"}})) ==
          "params.labels: keys must be non-empty and contain no '='");
}

TEST_CASE("timeout must be above zero and at most one year", "[unit][task_spec]") {
    CHECK(*parse_task_spec(with("timeout", 0.001)).timeout_s == 0.001);
    CHECK(*parse_task_spec(with("timeout", 30)).timeout_s == 30.0);
    CHECK(*parse_task_spec(with("timeout", 365.0 * 86400)).timeout_s == 365.0 * 86400);
    CHECK_FALSE(parse_task_spec(with("timeout", nullptr)).timeout_s);
    for (const json& bad : {json(0), json(-1), json(365.0 * 86400 + 1)}) {
        CHECK(starts_with(rejection(with("timeout", bad)), "params.timeout: must be above 0"));
    }
    CHECK(rejection(with("timeout", "30s")) == "params.timeout: expected a number");
}

TEST_CASE("kill_after may be zero but not negative or above one year", "[unit][task_spec]") {
    CHECK(parse_task_spec(with("kill_after", 0)).kill_after_s == 0.0);
    CHECK(parse_task_spec(with("kill_after", 2.5)).kill_after_s == 2.5);
    CHECK(parse_task_spec(with("kill_after", nullptr)).kill_after_s == 5.0);
    CHECK(starts_with(rejection(with("kill_after", -0.5)), "params.kill_after: must be between 0"));
    CHECK(starts_with(rejection(with("kill_after", 365.0 * 86400 + 1)),
                      "params.kill_after: must be between 0"));
}

TEST_CASE("retries must be between 0 and the maximum", "[unit][task_spec]") {
    CHECK(parse_task_spec(with("retries", 0)).retries == 0);
    CHECK(parse_task_spec(with("retries", 3)).retries == 3);
    CHECK(parse_task_spec(with("retries", mpctl::proto::k_max_retries)).retries ==
          mpctl::proto::k_max_retries);
    CHECK(rejection(with("retries", -1)) == "params.retries: must be between 0 and 1000");
    CHECK(rejection(with("retries", mpctl::proto::k_max_retries + 1)) ==
          "params.retries: must be between 0 and 1000");
    CHECK(rejection(with("retries", 1.5)) == "params.retries: expected an integer");
    CHECK(rejection(with("retries", int64_t{1} << 40)) ==
          "params.retries: expected an integer in the int32 range");
}

TEST_CASE("retry_delay may be zero but not negative", "[unit][task_spec]") {
    CHECK(parse_task_spec(with("retry_delay", 0)).retry_delay_s == 0.0);
    CHECK(parse_task_spec(with("retry_delay", 1.5)).retry_delay_s == 1.5);
    CHECK(starts_with(rejection(with("retry_delay", -1)), "params.retry_delay: must be between 0"));
}

TEST_CASE("after ids must be positive integers", "[unit][task_spec]") {
    CHECK(parse_task_spec(with("after", {1, 2, 30})).after == std::vector<int64_t>{1, 2, 30});
    CHECK(parse_task_spec(with("after", json::array())).after.empty());
    CHECK(rejection(with("after", {1, 0})) == "params.after: task ids are positive integers");
    CHECK(rejection(with("after", {-4})) == "params.after: task ids are positive integers");
    CHECK(rejection(with("after", {"1"})) == "params.after[0]: expected an integer");
    CHECK(rejection(with("after", 1)) == "params.after: expected an array of integers");
}

TEST_CASE("pool names are 1-64 letters, digits, '_', '-' and '.'", "[unit][task_spec]") {
    using mpctl::proto::valid_pool_name;
    CHECK(valid_pool_name("default"));
    CHECK(valid_pool_name("gpu-1.x_Y"));
    CHECK(valid_pool_name("a"));
    CHECK(valid_pool_name(std::string(64, 'p')));
    CHECK_FALSE(valid_pool_name(""));
    CHECK_FALSE(valid_pool_name(std::string(65, 'p')));
    for (const char* bad : {"a b", "a/b", "pool!", "\xC3\xA9t\xC3\xA9", "a\tb", "x:y", "..\n"}) {
        CHECK_FALSE(valid_pool_name(bad));
    }
    CHECK(parse_task_spec(with("pool", "gpu")).pool == "gpu");
    CHECK(rejection(with("pool", "")) == "params.pool: 1-64 characters of letters, digits, '_', '-' and '.'");
    CHECK(rejection(with("pool", "a/b")) ==
          "params.pool: 1-64 characters of letters, digits, '_', '-' and '.'");
}

TEST_CASE("priority is an int32 and may be negative", "[unit][task_spec]") {
    CHECK(parse_task_spec(with("priority", 10)).priority == 10);
    CHECK(parse_task_spec(with("priority", -3)).priority == -3);
    CHECK(rejection(with("priority", 0.5)) == "params.priority: expected an integer");
}

TEST_CASE("null fields count as absent", "[unit][task_spec]") {
    json j = {{"argv", {"ls"}},     {"shell", nullptr},  {"cwd", nullptr},   {"env", nullptr},
              {"name", nullptr},    {"labels", nullptr}, {"stdin", nullptr}, {"timeout", nullptr},
              {"retries", nullptr}, {"pool", nullptr},   {"after", nullptr}, {"priority", nullptr}};
    TaskSpec s = parse_task_spec(j);
    CHECK(s.argv == std::vector<std::string>{"ls"});
    CHECK_FALSE(s.shell);
    CHECK_FALSE(s.env);
    CHECK(s.pool == "default");
}
