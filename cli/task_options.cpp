#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/task_options.hpp>
#include <mpctl/common/byte_size.hpp>
#include <mpctl/common/env_file.hpp>
#include <mpctl/common/paths.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/task_spec.hpp>

extern char** environ;

namespace mpctl::cli {

using nlohmann::json;

void add_task_options(CLI::App* sub, TaskOptions& o) {
    sub->add_option("--name", o.name, "A name for the task")->group("Task options");
    sub->add_option("--label", o.labels, "Label K=V (repeatable)")->group("Task options");
    sub->add_option("--cwd", o.cwd, "Working directory (default: the current one)")->group("Task options");
    sub->add_option("--env", o.env, "Set K=V, or pass K from this environment (repeatable)")
        ->group("Task options");
    sub->add_flag("--env-clear", o.env_clear, "Start from an empty environment (then --env)")
        ->group("Task options");
    sub->add_option("--stdin", o.stdin_file, "Feed this file to the task's stdin (default: /dev/null)")
        ->group("Task options");
    sub->add_flag("--shell", o.shell, "Run the command words as one /bin/sh -c string")
        ->group("Task options");
    sub->add_option("--timeout", o.timeout, "Then SIGTERM to its process group (30, 1.5, 250ms, 5m)")
        ->group("Task options");
    sub->add_option("--kill-after", o.kill_after, "SIGKILL this long after the SIGTERM (default 5s)")
        ->group("Task options");
    sub->add_option("--retries", o.retries, "Extra attempts after a failure")
        ->check(whole_number(0, 1000))
        ->type_name("N")
        ->group("Task options");
    sub->add_option("--retry-delay", o.retry_delay, "Pause before each retry")->group("Task options");
    sub->add_option("--after", o.after, "Run after task ID succeeded (repeatable)")->group("Task options");
    sub->add_option("--pool", o.pool, "Worker pool (created on first use)")->group("Task options");
    sub->add_option("--priority", o.priority, "Higher runs first within its pool (default 0)")
        ->group("Task options");
    sub->add_option("--env-file", o.env_files, "Read KEY=VALUE lines from FILE (repeatable; before --env)")
        ->group("Process control");
    sub->add_option("--nice", o.nice, "Niceness of the task's processes (-20..19)")
        ->check(whole_number(-20, 19))
        ->type_name("N")
        ->group("Process control");
    sub->add_option("--rlimit", o.rlimits, "Resource limits: nofile=N,as=BYTES,cpu=S,core=0 (repeatable)")
        ->group("Process control");
    sub->add_option("--umask", o.umask, "File mode creation mask, octal (e.g. 077)")
        ->group("Process control");
    sub->add_option("--max-output", o.max_output,
                    "Keep at most this much of each output stream (e.g. 100M; default: the daemon's)")
        ->group("Process control");
    sub->add_flag("--cgroup", o.cgroup,
                  "Contain the task in a cgroup v2 of its own, so that nothing it starts outlives it")
        ->group("Process control");
    sub->add_option("--cpus", o.cpus,
                    "CPUs a Slurm pool's job asks for (--cpus-per-task; local pools ignore it)")
        ->check(whole_number(1, 4096))
        ->type_name("N")
        ->group("Slurm pools");
    sub->add_option("--mem", o.mem, "Memory a Slurm pool's job asks for (e.g. 4G; local pools ignore it)")
        ->type_name("SIZE")
        ->group("Slurm pools");
    sub->add_option("--gpus", o.gpus, "GPUs a Slurm pool's job asks for (local pools ignore it)")
        ->check(whole_number(1, 1024))
        ->type_name("N")
        ->group("Slurm pools");
}

void add_pipe_option(CLI::App* sub, TaskOptions& o) {
    sub->add_flag("--pipe", o.pipe, "The command is a pipeline: A ARGS '|' B ARGS ('|' quoted, its own word)")
        ->group("Process control");
}

std::vector<std::string> command_words(CLI::App* sub, AppContext& ctx) {
    std::vector<std::string> words = sub->remaining();
    // CLI11 hands an unknown option over as the first command word: it is a typo, not a command.
    if (!words.empty() && words.front().size() > 1 && words.front()[0] == '-') {
        throw CliError(exit_code::usage, "unknown option " + words.front() + " for `mpctl " +
                                             sub->get_name() + "` (see mpctl " + sub->get_name() +
                                             " --help)");
    }
    if (ctx.has_separator) {
        ctx.separator_used = true;
        if (!words.empty()) {
            words.emplace_back("--");
        }
        words.insert(words.end(), ctx.after_separator.begin(), ctx.after_separator.end());
    }
    return words;
}

namespace {

std::string current_dir() {
    char buf[4096];
    if (::getcwd(buf, sizeof buf) == nullptr) {
        throw CliError(exit_code::failure,
                       std::string("cannot read the current directory: ") + std::strerror(errno));
    }
    return buf;
}

// "A x '|' B y" -> [[A, x], [B, y]].
json split_pipeline(const std::vector<std::string>& words) {
    json stages = json::array();
    std::vector<std::string> stage;
    auto close_stage = [&] {
        if (stage.empty()) {
            throw CliError(exit_code::usage, "--pipe: empty stage (write stages as -- A ARGS '|' B ARGS)");
        }
        stages.push_back(std::move(stage));
        stage.clear();
    };
    for (const auto& w : words) {
        if (w == "|") {
            close_stage();
        } else {
            stage.push_back(w);
        }
    }
    close_stage();
    if (stages.size() < 2) {
        throw CliError(exit_code::usage, "--pipe: a pipeline needs at least two stages separated by '|'");
    }
    return stages;
}

common::EnvEntries read_env_file(const std::string& path) {
    auto text = common::read_file(path);
    if (!text) {
        throw CliError(exit_code::usage, "--env-file " + path + ": " + text.error().message());
    }
    auto entries = common::parse_env_file(*text);
    if (!entries) {
        throw CliError(exit_code::usage, "--env-file " + path + ": " + entries.error().message());
    }
    return std::move(*entries);
}

// ["nofile=64,core=0", "cpu=10"] -> {"nofile": 64, "core": 0, "cpu": 10}; sizes may have units.
json parse_rlimits(const std::vector<std::string>& args) {
    json limits = json::object();
    for (const auto& arg : args) {
        size_t start = 0;
        while (start <= arg.size()) {
            size_t comma = arg.find(',', start);
            std::string item =
                arg.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            start = comma == std::string::npos ? arg.size() + 1 : comma + 1;
            auto eq = item.find('=');
            if (eq == 0 || eq == std::string::npos) {
                throw CliError(exit_code::usage, "--rlimit: expected NAME=VALUE, got '" + item + "'");
            }
            std::string name = item.substr(0, eq);
            std::string value = item.substr(eq + 1);
            if (proto::rlimit_resource(name) < 0) {
                throw CliError(exit_code::usage,
                               "--rlimit: unknown limit '" + name +
                                   "' (as, core, cpu, data, fsize, memlock, msgqueue, nice, "
                                   "nofile, nproc, rss, rtprio, sigpending, stack)");
            }
            if (value == "unlimited" || value == "infinity") {
                limits[name] = "unlimited";
                continue;
            }
            auto n = common::parse_byte_size(value);
            if (!n) {
                throw CliError(exit_code::usage,
                               "--rlimit " + name + ": not a number: '" + value + "' (or unlimited)");
            }
            limits[name] = *n;
        }
    }
    return limits;
}

}  // namespace

std::string TaskRequest::params_text() const {
    std::string text = proto::dump_json(spec);
    text.pop_back();  // the closing brace
    text += text.size() > 1 ? ",\"env\":" : "\"env\":";
    text += env_json;
    text.push_back('}');
    return text;
}

CliError in_option_words(const CliError& e) {
    static const std::pair<std::string_view, std::string_view> k_options[] = {
        {"after", "--after"},
        {"timeout", "--timeout"},
        {"kill_after", "--kill-after"},
        {"retries", "--retries"},
        {"retry_delay", "--retry-delay"},
        {"cwd", "--cwd"},
        {"env", "--env"},
        {"name", "--name"},
        {"labels", "--label"},
        {"stdin", "--stdin"},
        {"stdin_fd", "--stdin"},
        {"pool", "--pool"},
        {"priority", "--priority"},
        {"nice", "--nice"},
        {"umask", "--umask"},
        {"rlimits", "--rlimit"},
        {"max_output", "--max-output"},
        {"cgroup", "--cgroup"},
        {"cpus", "--cpus"},
        {"mem", "--mem"},
        {"gpus", "--gpus"},
        {"argv", "the command"},
        {"shell", "the command"},
        {"pipeline", "the command"},
    };
    std::string_view message = e.what();
    for (std::string_view prefix : {"params.defaults.", "params."}) {
        if (!message.starts_with(prefix)) {
            continue;
        }
        std::string_view rest = message.substr(prefix.size());
        if (rest.starts_with("tasks[")) {
            size_t close = rest.find("].");
            if (close == std::string_view::npos) {
                break;
            }
            rest = rest.substr(close + 2);
        }
        size_t end = rest.find_first_of(".:[");
        std::string_view field = rest.substr(0, end);
        for (const auto& [name, option] : k_options) {
            if (field == name) {
                std::string out(option);
                out += end == std::string_view::npos ? std::string_view() : rest.substr(end);
                return CliError(e.code(), out, e.error());
            }
        }
        break;
    }
    return e;
}

TaskRequest build_task_spec(const TaskOptions& o, const std::vector<std::string>& command) {
    if (command.empty()) {
        throw CliError(exit_code::usage, "no command given (put it after the options, e.g. `-- make -j4`)");
    }
    json spec = json::object();
    if (o.pipe) {
        if (o.shell) {
            throw CliError(exit_code::usage,
                           "--pipe and --shell exclude each other (a shell pipeline is --shell 'a | b')");
        }
        spec["pipeline"] = split_pipeline(command);
    } else if (o.shell) {
        std::string script;
        for (const auto& w : command) {
            script += (script.empty() ? "" : " ") + w;
        }
        spec["shell"] = script;
    } else {
        spec["argv"] = command;
    }
    std::string here = current_dir();
    spec["cwd"] = o.cwd.empty() ? here : common::absolute_path(o.cwd, here);

    // The environment, in environ order, later entries (--env) winning; duplicates are left for the
    // daemon's parser, where the last one wins too. MPCTL_TOKEN, a remote daemon's secret, stays here
    // unless --env names it: the daemon journals a task's environment and hands it to the task.
    std::vector<std::pair<std::string_view, std::string_view>> env;
    if (!o.env_clear) {
        for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
            const char* eq = std::strchr(*e, '=');
            if (eq != nullptr && eq != *e &&
                std::string_view(*e, static_cast<size_t>(eq - *e)) != "MPCTL_TOKEN") {
                env.emplace_back(std::string_view(*e, static_cast<size_t>(eq - *e)),
                                 std::string_view(eq + 1));
            }
        }
    }
    std::vector<common::EnvEntries> files;  // owns the strings ENV points into
    files.reserve(o.env_files.size());
    for (const auto& path : o.env_files) {
        files.push_back(read_env_file(path));
        for (const auto& [k, v] : files.back()) {
            env.emplace_back(k, v);
        }
    }
    for (const auto& kv : o.env) {
        auto eq = kv.find('=');
        if (eq == 0) {
            throw CliError(exit_code::usage, "--env: expected K=V or K, got '" + kv + "'");
        }
        if (eq == std::string::npos) {
            const char* v = std::getenv(kv.c_str());
            if (v != nullptr) {
                env.emplace_back(kv, v);
            }
        } else {
            env.emplace_back(std::string_view(kv).substr(0, eq), std::string_view(kv).substr(eq + 1));
        }
    }
    TaskRequest request;
    request.env_json.reserve(4096);
    request.env_json.push_back('{');
    for (const auto& [k, v] : env) {
        if (request.env_json.size() > 1) {
            request.env_json.push_back(',');
        }
        proto::append_json_string(request.env_json, k);
        request.env_json.push_back(':');
        proto::append_json_string(request.env_json, v);
    }
    request.env_json.push_back('}');

    if (!o.name.empty()) {
        spec["name"] = o.name;
    }
    if (!o.labels.empty()) {
        json labels = json::object();
        for (const auto& l : o.labels) {
            auto eq = l.find('=');
            if (eq == 0 || eq == std::string::npos) {
                throw CliError(exit_code::usage, "--label: expected K=V, got '" + l + "'");
            }
            labels[l.substr(0, eq)] = l.substr(eq + 1);
        }
        spec["labels"] = std::move(labels);
    }
    if (o.stdin_file == "-") {
        spec["stdin_fd"] = true;
    } else if (!o.stdin_file.empty()) {
        spec["stdin"] = common::absolute_path(o.stdin_file, here);
    }
    if (!o.timeout.empty()) {
        double t = parse_seconds(o.timeout, "--timeout");
        if (t <= 0) {
            throw CliError(exit_code::usage, "--timeout: must be above zero");
        }
        spec["timeout"] = t;
    }
    if (!o.kill_after.empty()) {
        spec["kill_after"] = parse_seconds(o.kill_after, "--kill-after");
    }
    if (o.retries > 0) {
        spec["retries"] = o.retries;
    }
    if (!o.retry_delay.empty()) {
        spec["retry_delay"] = parse_seconds(o.retry_delay, "--retry-delay");
    }
    if (!o.after.empty()) {
        spec["after"] = parse_ids(o.after);
    }
    if (!o.pool.empty()) {
        spec["pool"] = o.pool;
    }
    if (o.priority != 0) {
        spec["priority"] = o.priority;
    }
    // Like the working directory and the environment, the umask and a raised niceness are the submitting
    // shell's (`nice -n 10 mpctl run ...`), unless given. A niceness below 0 needs a privilege the daemon
    // may not have, so only one above is taken along.
    if (o.nice) {
        spec["nice"] = *o.nice;
    } else {
        errno = 0;
        int own = ::getpriority(PRIO_PROCESS, 0);
        if (errno == 0 && own > 0) {
            spec["nice"] = own;
        }
    }
    if (!o.rlimits.empty()) {
        spec["rlimits"] = parse_rlimits(o.rlimits);
    }
    if (!o.umask.empty()) {
        if (o.umask.size() > 4 || o.umask.find_first_not_of("01234567") != std::string::npos ||
            std::stoul(o.umask, nullptr, 8) > 0777) {
            throw CliError(exit_code::usage,
                           "--umask: expected an octal mask such as 022 or 077, got '" + o.umask + "'");
        }
        spec["umask"] = o.umask;
    } else {
        mode_t own = ::umask(0);  // the only way to read it; mpctl is single-threaded
        ::umask(own);
        char text[8];
        std::snprintf(text, sizeof text, "%03o", static_cast<unsigned>(own & 0777));
        spec["umask"] = text;
    }
    if (!o.max_output.empty()) {
        auto bytes = common::parse_byte_size(o.max_output);
        if (!bytes) {
            throw CliError(exit_code::usage,
                           "--max-output: not a size: '" + o.max_output + "' (bytes, or 64K, 100M, 2G)");
        }
        spec["max_output"] = *bytes;
    }
    if (o.cgroup) {
        spec["cgroup"] = true;
    }
    if (o.cpus > 0) {
        spec["cpus"] = o.cpus;
    }
    if (!o.mem.empty()) {
        auto bytes = common::parse_byte_size(o.mem);
        if (!bytes || *bytes == 0) {
            throw CliError(exit_code::usage, "--mem: not a size: '" + o.mem + "' (bytes, or 512M, 4G)");
        }
        spec["mem"] = *bytes;
    }
    if (o.gpus > 0) {
        spec["gpus"] = o.gpus;
    }
    request.spec = std::move(spec);
    return request;
}

}  // namespace mpctl::cli
