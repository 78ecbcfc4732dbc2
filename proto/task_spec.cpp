#include <string_view>
#include <sys/resource.h>
#include <vector>

#include <mpctl/common/base64.hpp>
#include <mpctl/common/terminal_text.hpp>
#include <mpctl/proto/params.hpp>
#include <mpctl/proto/task_spec.hpp>

namespace mpctl::proto {

using nlohmann::json;

namespace {

constexpr double k_max_seconds = 365.0 * 86400.0;

std::string resolve_against(const std::string& path, const std::string& base) {
    if (path.empty() || path.front() == '/' || base.empty()) {
        return path;
    }
    return base.ends_with('/') ? base + path : base + "/" + path;
}

double seconds_field(const Params& p, const char* key, double fallback, bool allow_zero) {
    double v = p.get_or<double>(key, fallback);
    if (v < 0 || (!allow_zero && v == 0) || v > k_max_seconds) {
        throw_invalid_params(p.path() + "." + key + ": must be " + (allow_zero ? "between 0" : "above 0") +
                             " and one year (in seconds)");
    }
    return v;
}

}  // namespace

std::string display_words(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
        out += (out.empty() ? "" : " ") + common::terminal_word(w);
    }
    return out;
}

std::string display_pipeline(const std::vector<std::vector<std::string>>& stages) {
    std::string out;
    for (const auto& stage : stages) {
        out += (out.empty() ? "" : " | ") + display_words(stage);
    }
    return out;
}

std::string TaskSpec::display_command() const {
    if (shell) {
        return *shell;
    }
    return pipeline.empty() ? display_words(argv) : display_pipeline(pipeline);
}

std::vector<std::vector<std::string>> TaskSpec::stage_argvs() const {
    if (shell) {
        return {{"/bin/sh", "-c", *shell}};
    }
    if (!pipeline.empty()) {
        return pipeline;
    }
    return {argv};
}

namespace {
const std::pair<const char*, int> k_limits[] = {
    {"as", RLIMIT_AS},
    {"core", RLIMIT_CORE},
    {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},
    {"fsize", RLIMIT_FSIZE},
    {"memlock", RLIMIT_MEMLOCK},
    {"nofile", RLIMIT_NOFILE},
    {"nproc", RLIMIT_NPROC},
    {"rss", RLIMIT_RSS},
    {"stack", RLIMIT_STACK},
    {"msgqueue", RLIMIT_MSGQUEUE},
    {"nice", RLIMIT_NICE},
    {"rtprio", RLIMIT_RTPRIO},
    {"sigpending", RLIMIT_SIGPENDING},
};
}  // namespace

void limits_to_json(json& j, std::optional<int> nice, std::optional<unsigned> umask,
                    const std::map<std::string, uint64_t>& rlimits) {
    if (nice) {
        j["nice"] = *nice;
    }
    if (umask) {
        j["umask"] = *umask;
    }
    if (!rlimits.empty()) {
        json limits = json::object();
        for (const auto& [name, value] : rlimits) {
            limits[name] = value == RLIM_INFINITY ? json("unlimited") : json(value);
        }
        j["rlimits"] = std::move(limits);
    }
}

const char* rlimit_name(int resource) {
    for (const auto& [n, r] : k_limits) {
        if (r == resource) {
            return n;
        }
    }
    return nullptr;
}

int rlimit_resource(const std::string& name) {
    for (const auto& [n, r] : k_limits) {
        if (name == n) {
            return r;
        }
    }
    return -1;
}

bool valid_pool_name(const std::string& name) {
    if (name.empty() || name.size() > 64) {
        return false;
    }
    for (unsigned char c : name) {
        if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.')) {
            return false;
        }
    }
    return true;
}

namespace {

// NEED_COMMAND is false for task.submit_batch's defaults, which an entry may complete with its own command.
TaskSpec parse_spec(const json& value, const std::string& path, bool need_command) {
    Params p(value, path);
    p.reject_unknown({"argv",   "shell",       "pipeline",      "cwd",     "env",        "name",
                      "labels", "stdin",       "stdin_fd",      "timeout", "kill_after", "retries",
                      "input",  "retry_delay", "after",         "pool",    "priority",   "nice",
                      "umask",  "rlimits",     "max_output",    "cgroup",  "attached",   "cpus",
                      "mem",    "gpus",        "array_throttle"});
    TaskSpec spec;
    auto argv = p.optional<std::vector<std::string>>("argv");
    spec.shell = p.optional<std::string>("shell");
    bool has_pipeline = p.has("pipeline");
    if (int(argv.has_value()) + int(spec.shell.has_value()) + int(has_pipeline) > 1) {
        throw_invalid_params(path + ": give one of argv, shell and pipeline");
    }
    if (has_pipeline) {
        json stages = p.required<json>("pipeline");
        if (!stages.is_array() || stages.size() < 2 || stages.size() > k_max_stages) {
            throw_invalid_params(path + ".pipeline: expected an array of 2 to " +
                                 std::to_string(k_max_stages) + " argv arrays");
        }
        for (size_t i = 0; i < stages.size(); ++i) {
            std::string stage_path = path + ".pipeline[" + std::to_string(i) + "]";
            auto stage = Params::convert<std::vector<std::string>>(stages[i], stage_path);
            // An empty name is a command too: the shell says "command not found" and exits 127, and so
            // does the task (its spawn fails), not the request.
            if (stage.empty()) {
                throw_invalid_params(stage_path + ": must name a command");
            }
            spec.pipeline.push_back(std::move(stage));
        }
    } else if (argv) {
        if (argv->empty()) {
            throw_invalid_params(path + ".argv: must name a command");
        }
        spec.argv = std::move(*argv);
    } else if (spec.shell) {
        if (spec.shell->empty()) {
            throw_invalid_params(path + ".shell: must not be empty");
        }
    } else if (need_command) {
        throw_invalid_params(
            path + ": a task needs argv (an array of strings), shell (a string) or pipeline (argv arrays)");
    }

    // "" is not a path: refused like any relative one (leave cwd out, or null, for the default).
    spec.cwd = p.get_or<std::string>("cwd", "");
    if (p.has("cwd") && !spec.cwd.starts_with('/')) {
        throw_invalid_params(path + ".cwd: must be an absolute path");
    }
    if (auto env = p.optional<Environment>("env")) {
        for (const auto& [k, v] : *env) {
            if (k.empty() || k.find('=') != std::string::npos) {
                throw_invalid_params(path + ".env: variable names must be non-empty and contain no '='");
            }
        }
        spec.env = std::make_shared<const Environment>(std::move(*env));
    }
    spec.name = p.optional<std::string>("name");
    if (spec.name && count_characters(*spec.name) > 256) {
        throw_invalid_params(path + ".name: at most 256 characters");
    }
    spec.labels = p.get_or<std::map<std::string, std::string>>("labels", {});
    for (const auto& [k, v] : spec.labels) {
        if (k.empty() || k.find('=') != std::string::npos) {
            throw_invalid_params(path + ".labels: keys must be non-empty and contain no '='");
        }
    }
    if (auto in = p.optional<std::string>("stdin")) {
        if (in->empty()) {
            throw_invalid_params(path + ".stdin: must be a path");
        }
        // Without cwd a relative path stays relative, for the task's working directory to resolve when
        // it starts (the daemon's default): refusing it would make a batch entry's stdin depend on
        // whether its defaults give a cwd, which no schema of the entry alone could say.
        spec.stdin_path = resolve_against(*in, spec.cwd);
    }
    spec.stdin_passed = p.get_or<bool>("stdin_fd", false);
    if (spec.stdin_passed && spec.stdin_path) {
        throw_invalid_params(path + ": give either stdin or stdin_fd, not both");
    }
    if (auto text = p.optional<std::string>("input")) {
        if (text->size() > k_max_input_chars) {
            throw_invalid_params(path + ".input: at most " + std::to_string(k_max_input_chars) +
                                 " characters (64 KiB; give more as a file with stdin, or with stdin_fd)");
        }
        auto bytes = common::base64_decode(*text);
        if (!bytes) {
            throw_invalid_params(path + ".input: must be base64 (RFC 4648, with padding)");
        }
        if (spec.stdin_path || spec.stdin_passed) {
            throw_invalid_params(path + ": give one of stdin, stdin_fd and input");
        }
        spec.input = std::move(*bytes);
    }
    if (p.has("timeout")) {
        spec.timeout_s = seconds_field(p, "timeout", 0, false);
    }
    spec.kill_after_s = seconds_field(p, "kill_after", k_default_kill_after_s, true);
    spec.retries = p.get_or<int>("retries", 0);
    if (spec.retries < 0 || spec.retries > k_max_retries) {
        throw_invalid_params(path + ".retries: must be between 0 and " + std::to_string(k_max_retries));
    }
    spec.retry_delay_s = seconds_field(p, "retry_delay", 0, true);
    spec.after = p.get_or<std::vector<int64_t>>("after", {});
    for (int64_t id : spec.after) {
        if (id <= 0) {
            throw_invalid_params(path + ".after: task ids are positive integers");
        }
    }
    spec.pool = p.get_or<std::string>("pool", k_default_pool);
    if (!valid_pool_name(spec.pool)) {
        throw_invalid_params(path + ".pool: 1-64 characters of letters, digits, '_', '-' and '.'");
    }
    spec.priority = p.get_or<int>("priority", 0);
    if (auto nice = p.optional<int>("nice")) {
        if (*nice < -20 || *nice > 19) {
            throw_invalid_params(path + ".nice: must be between -20 and 19");
        }
        spec.nice = nice;
    }
    if (p.has("umask")) {
        json u = p.required<json>("umask");
        std::optional<unsigned> mask;
        if (auto v = Params::integer(u)) {
            if (*v >= 0 && *v <= 0777) {
                mask = static_cast<unsigned>(*v);
            }
        } else if (u.is_string()) {
            const std::string& text = u.get_ref<const std::string&>();
            if (!text.empty() && text.size() <= 4 &&
                text.find_first_not_of("01234567") == std::string::npos) {
                unsigned v = static_cast<unsigned>(std::stoul(text, nullptr, 8));
                if (v <= 0777) {
                    mask = v;
                }
            }
        }
        if (!mask) {
            throw_invalid_params(path +
                                 ".umask: expected an octal string (\"022\") or an integer up to 0777");
        }
        spec.umask = mask;
    }
    if (p.has("rlimits")) {
        json limits = p.required<json>("rlimits");
        if (!limits.is_object()) {
            throw_invalid_params(path + ".rlimits: expected an object of limits (\"nofile\": 1024)");
        }
        for (const auto& [name, value] : limits.items()) {
            if (rlimit_resource(name) < 0) {
                throw_invalid_params(path + ".rlimits." + name +
                                     ": unknown limit (as, core, cpu, data, fsize, memlock, msgqueue, nice, "
                                     "nofile, nproc, rss, rtprio, sigpending, stack)");
            }
            if (value == "unlimited") {
                spec.rlimits[name] = RLIM_INFINITY;
                continue;
            }
            int64_t v = Params::convert<int64_t>(value, path + ".rlimits." + name);
            if (v < 0) {
                throw_invalid_params(path + ".rlimits." + name + ": must not be negative (or \"unlimited\")");
            }
            spec.rlimits[name] = static_cast<uint64_t>(v);
        }
    }
    if (p.has("max_output")) {
        int64_t v = p.required<int64_t>("max_output");
        if (v < 0) {
            throw_invalid_params(path + ".max_output: must not be negative");
        }
        spec.max_output = static_cast<uint64_t>(v);
    }
    spec.cgroup = p.get_or<bool>("cgroup", false);
    spec.attached = p.get_or<bool>("attached", false);
    if (auto cpus = p.optional<int64_t>("cpus")) {
        if (*cpus < 1 || *cpus > 4096) {
            throw_invalid_params(path + ".cpus: must be between 1 and 4096");
        }
        spec.cpus = static_cast<int>(*cpus);
    }
    if (auto mem = p.optional<int64_t>("mem")) {
        if (*mem < 1) {
            throw_invalid_params(path + ".mem: bytes, at least 1");
        }
        spec.mem = static_cast<uint64_t>(*mem);
    }
    if (auto gpus = p.optional<int64_t>("gpus")) {
        if (*gpus < 1 || *gpus > 1024) {
            throw_invalid_params(path + ".gpus: must be between 1 and 1024");
        }
        spec.gpus = static_cast<int>(*gpus);
    }
    if (auto throttle = p.optional<int64_t>("array_throttle")) {
        if (*throttle < 1 || *throttle > 1000000) {
            throw_invalid_params(path + ".array_throttle: must be between 1 and 1000000");
        }
        spec.array_throttle = static_cast<int>(*throttle);
    }
    return spec;
}

}  // namespace

TaskSpec parse_task_spec(const json& value, const std::string& path) {
    return parse_spec(value, path, true);
}

TaskSpec parse_spec_defaults(const json& value, const std::string& path) {
    return parse_spec(value, path, false);
}

json merge_spec_defaults(const json& defaults, const json& value) {
    if (!defaults.is_object() || !value.is_object()) {
        return value;
    }
    auto given = [&](const char* key) {
        auto it = value.find(key);
        return it != value.end() && !it->is_null();
    };
    json merged = defaults;
    // Fields that exclude each other come as a group: an entry's own command replaces the default's, and
    // so does its own stdin (a file or a passed descriptor). Merged field by field, an entry could never
    // override a default without also being refused for giving both.
    for (const auto& group : {std::vector<const char*>{"argv", "shell", "pipeline"},
                              std::vector<const char*>{"stdin", "stdin_fd", "input"}}) {
        bool own = false;
        for (const char* key : group) {
            own = own || given(key);
        }
        if (own) {
            for (const char* key : group) {
                merged.erase(key);
            }
        }
    }
    for (const auto& [k, v] : value.items()) {
        // null is absent: the default stands. Kept where there is no default, so that an unknown field is
        // refused even when its value is null, as in task.submit.
        if (!v.is_null() || !merged.contains(k)) {
            merged[k] = v;
        }
    }
    return merged;
}

json to_json(const TaskSpec& spec, bool with_env) {
    json j = json::object();
    if (spec.shell) {
        j["shell"] = *spec.shell;
    } else if (!spec.pipeline.empty()) {
        j["pipeline"] = spec.pipeline;
    } else {
        j["argv"] = spec.argv;
    }
    if (!spec.cwd.empty()) {
        j["cwd"] = spec.cwd;
    }
    if (spec.env && with_env) {
        j["env"] = *spec.env;
    }
    if (spec.name) {
        j["name"] = *spec.name;
    }
    if (!spec.labels.empty()) {
        j["labels"] = spec.labels;
    }
    if (spec.stdin_path) {
        j["stdin"] = *spec.stdin_path;
    }
    if (spec.timeout_s) {
        j["timeout"] = *spec.timeout_s;
    }
    j["kill_after"] = spec.kill_after_s;
    if (spec.retries != 0) {
        j["retries"] = spec.retries;
        j["retry_delay"] = spec.retry_delay_s;
    }
    if (!spec.after.empty()) {
        j["after"] = spec.after;
    }
    j["pool"] = spec.pool;
    if (spec.priority != 0) {
        j["priority"] = spec.priority;
    }
    if (spec.stdin_passed) {
        j["stdin_fd"] = true;
    }
    if (spec.input) {
        j["input"] = common::base64_encode(*spec.input);
    }
    limits_to_json(j, spec.nice, spec.umask, spec.rlimits);
    if (spec.max_output) {
        j["max_output"] = *spec.max_output;
    }
    if (spec.cgroup) {
        j["cgroup"] = true;
    }
    if (spec.cpus) {
        j["cpus"] = *spec.cpus;
    }
    if (spec.mem) {
        j["mem"] = *spec.mem;
    }
    if (spec.gpus) {
        j["gpus"] = *spec.gpus;
    }
    if (spec.array_throttle) {
        j["array_throttle"] = *spec.array_throttle;
    }
    return j;
}

}  // namespace mpctl::proto
