// Task specs beyond parsing: merging a batch's defaults into its entries, the round trip through to_json
// (what the journal stores), and how a command is displayed.

#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/task_spec.hpp>

using mpctl::proto::parse_task_spec;
using mpctl::proto::TaskSpec;
using nlohmann::json;
using StringMap = std::map<std::string, std::string>;

TEST_CASE("merge_spec_defaults lets the entry's keys win", "[unit][task_spec]") {
    json defaults = {
        {"cwd", "/d"}, {"timeout", 5}, {"labels", {{"a", "1"}}}, {"env", {{"X", "1"}, {"Y", "2"}}}};
    json value = {{"argv", {"ls"}}, {"timeout", 9}, {"env", {{"Z", "3"}}}};
    json merged = mpctl::proto::merge_spec_defaults(defaults, value);
    CHECK(merged["cwd"] == "/d");
    CHECK(merged["timeout"] == 9);
    CHECK(merged["labels"] == json{{"a", "1"}});
    CHECK(merged["argv"] == json::array({"ls"}));
    CHECK(merged["env"] == json{{"Z", "3"}});  // replaced as a whole, not merged key by key
}

TEST_CASE("merge_spec_defaults replaces the default's command with the entry's", "[unit][task_spec]") {
    json from_shell =
        mpctl::proto::merge_spec_defaults({{"shell", "make"}, {"pool", "p"}}, {{"argv", {"ls"}}});
    CHECK_FALSE(from_shell.contains("shell"));
    CHECK(from_shell["argv"] == json::array({"ls"}));
    CHECK(from_shell["pool"] == "p");
    CHECK_NOTHROW(parse_task_spec(from_shell));

    json from_argv = mpctl::proto::merge_spec_defaults({{"argv", {"ls"}}}, {{"shell", "echo"}});
    CHECK_FALSE(from_argv.contains("argv"));
    CHECK(from_argv["shell"] == "echo");
    CHECK_NOTHROW(parse_task_spec(from_argv));
}

TEST_CASE("merge_spec_defaults keeps the default's command when the entry has none", "[unit][task_spec]") {
    json merged = mpctl::proto::merge_spec_defaults({{"argv", {"echo"}}}, {{"name", "n"}});
    CHECK(merged == json{{"argv", {"echo"}}, {"name", "n"}});
}

TEST_CASE("merge_spec_defaults keeps a default where the entry has null", "[unit][task_spec]") {
    json merged = mpctl::proto::merge_spec_defaults({{"argv", {"echo"}}, {"timeout", 5}},
                                                    {{"timeout", nullptr}, {"shell", nullptr}});
    CHECK(merged == json{{"argv", {"echo"}}, {"timeout", 5}, {"shell", nullptr}});
    CHECK(parse_task_spec(merged).timeout_s == 5.0);
    // An unknown field stays, null or not, to be refused as in task.submit.
    json unknown = mpctl::proto::merge_spec_defaults({{"argv", {"echo"}}}, {{"bogus", nullptr}});
    CHECK(unknown == json{{"argv", {"echo"}}, {"bogus", nullptr}});
}

TEST_CASE("merge_spec_defaults replaces the default's stdin with the entry's, file or descriptor",
          "[unit][task_spec]") {
    using mpctl::proto::merge_spec_defaults;
    json to_fd = merge_spec_defaults({{"argv", {"cat"}}, {"stdin", "/in"}}, {{"stdin_fd", true}});
    CHECK(to_fd == json{{"argv", {"cat"}}, {"stdin_fd", true}});
    CHECK(parse_task_spec(to_fd).stdin_passed);
    json to_file = merge_spec_defaults({{"argv", {"cat"}}, {"stdin_fd", true}}, {{"stdin", "/in"}});
    CHECK(to_file == json{{"argv", {"cat"}}, {"stdin", "/in"}});
    json to_none = merge_spec_defaults({{"argv", {"cat"}}, {"stdin_fd", true}}, {{"stdin_fd", false}});
    CHECK_FALSE(parse_task_spec(to_none).stdin_passed);
}

TEST_CASE("defaults are checked alone, without a command, and their errors name them", "[unit][task_spec]") {
    using mpctl::proto::parse_spec_defaults;
    CHECK(parse_spec_defaults(json::object(), "params.defaults").argv.empty());
    CHECK(parse_spec_defaults({{"timeout", 3}}, "params.defaults").timeout_s == 3.0);
    auto message = [](const json& defaults) {
        try {
            (void)parse_spec_defaults(defaults, "params.defaults");
        } catch (const mpctl::proto::RequestError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    CHECK(message({{"timeout", -1}}) == "params.defaults.timeout: must be above 0 and one year (in seconds)");
    CHECK(message({{"bogus", 1}}) == "params.defaults.bogus: unknown field");
    CHECK(message({{"argv", {"a"}}, {"shell", "b"}}) ==
          "params.defaults: give one of argv, shell and pipeline");
}

TEST_CASE("merge_spec_defaults leaves non-object inputs alone", "[unit][task_spec]") {
    CHECK(mpctl::proto::merge_spec_defaults(nullptr, {{"argv", {"ls"}}}) == json{{"argv", {"ls"}}});
    CHECK(mpctl::proto::merge_spec_defaults({{"cwd", "/"}}, json::array({1})) == json::array({1}));
    CHECK(mpctl::proto::merge_spec_defaults(json::object(), json::object()) == json::object());
}

TEST_CASE("a full spec survives to_json and back", "[unit][task_spec]") {
    json in = {{"argv", {"make", "-j4", "all"}},
               {"cwd", "/src"},
               {"env", {{"PATH", "/bin"}, {"HOME", "/root"}}},
               {"name", "build"},
               {"labels", {{"team", "x"}}},
               {"stdin", "in.txt"},
               {"timeout", 30.5},
               {"kill_after", 2},
               {"retries", 3},
               {"retry_delay", 0.25},
               {"after", {1, 2}},
               {"pool", "gpu"},
               {"priority", -7}};
    TaskSpec a = parse_task_spec(in);
    json out = mpctl::proto::to_json(a);
    TaskSpec b = parse_task_spec(out);
    CHECK(b.argv == a.argv);
    CHECK_FALSE(b.shell);
    CHECK(b.cwd == "/src");
    REQUIRE(b.env);
    CHECK(*b.env == StringMap{{"PATH", "/bin"}, {"HOME", "/root"}});
    CHECK(b.name == a.name);
    CHECK(b.labels == a.labels);
    CHECK(b.stdin_path == std::optional<std::string>("/src/in.txt"));
    CHECK(b.timeout_s == a.timeout_s);
    CHECK(b.kill_after_s == 2.0);
    CHECK(b.retries == 3);
    CHECK(b.retry_delay_s == 0.25);
    CHECK(b.after == std::vector<int64_t>{1, 2});
    CHECK(b.pool == "gpu");
    CHECK(b.priority == -7);
    // And the JSON is a fixed point.
    CHECK(mpctl::proto::to_json(b) == out);
}

TEST_CASE("a minimal shell spec survives to_json and back", "[unit][task_spec]") {
    TaskSpec a = parse_task_spec({{"shell", "echo $HOME"}});
    json out = mpctl::proto::to_json(a);
    CHECK_FALSE(out.contains("argv"));
    CHECK(out["shell"] == "echo $HOME");
    TaskSpec b = parse_task_spec(out);
    REQUIRE(b.shell);
    CHECK(*b.shell == "echo $HOME");
    CHECK_FALSE(b.env);
    CHECK_FALSE(b.timeout_s);
    CHECK_FALSE(b.stdin_path);
    CHECK(b.retries == 0);
    CHECK(b.pool == "default");
    CHECK(b.priority == 0);
    CHECK(b.kill_after_s == 5.0);
}

TEST_CASE("to_json of a spec without env has no env key", "[unit][task_spec]") {
    json out = mpctl::proto::to_json(parse_task_spec({{"argv", {"ls"}}}));
    CHECK_FALSE(out.contains("env"));
    CHECK(out["argv"] == json::array({"ls"}));
    CHECK(out["pool"] == "default");
}

TEST_CASE("to_json without env leaves the environment out and keeps the rest", "[unit][task_spec]") {
    TaskSpec s = parse_task_spec({{"argv", {"ls"}}, {"env", {{"A", "1"}}}, {"name", "n"}});
    json with_env = mpctl::proto::to_json(s);
    json without = mpctl::proto::to_json(s, false);
    CHECK(with_env["env"] == json{{"A", "1"}});
    CHECK_FALSE(without.contains("env"));
    with_env.erase("env");
    CHECK(without == with_env);
    CHECK_FALSE(parse_task_spec(without).env);
}

TEST_CASE("display_command joins plain arguments with spaces", "[unit][task_spec]") {
    TaskSpec s;
    s.argv = {"make", "-j4", "CC=gcc", "a.out", "x,y", "50%"};
    CHECK(s.display_command() == "make -j4 CC=gcc a.out x,y 50%");
}

TEST_CASE("display_command single-quotes arguments the shell would split or expand", "[unit][task_spec]") {
    TaskSpec s;
    s.argv = {"echo", "a b", "$HOME",     "*.c",       "x|y",         "a;b",
              "~",    "#c",  "tab\there", "new\nline", "back\\slash", "\"dq\""};
    CHECK(s.display_command() ==
          "echo 'a b' '$HOME' '*.c' 'x|y' 'a;b' '~' '#c' $'tab\\there' $'new\\nline' 'back\\slash' '\"dq\"'");
}

TEST_CASE("display_command quotes empty arguments and escapes single quotes", "[unit][task_spec]") {
    TaskSpec s;
    s.argv = {"printf", "", "it's"};
    CHECK(s.display_command() == "printf '' 'it'\\''s'");
}

TEST_CASE("display_command of a shell task is the shell string as given", "[unit][task_spec]") {
    TaskSpec s = parse_task_spec({{"shell", "ls -l | wc -l > 'out file'"}});
    CHECK(s.display_command() == "ls -l | wc -l > 'out file'");
}
