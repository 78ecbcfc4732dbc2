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

std::string TaskSpec::display_command() const {
    if (shell) {
        return *shell;
    }
    std::string out;
    for (const auto& a : argv) {
        if (!out.empty()) {
            out.push_back(' ');
        }
        bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`|&;<>()*?[]{}~#") == std::string::npos;
        if (plain) {
            out += a;
        } else {
            out.push_back('\'');
            for (char c : a) {
                if (c == '\'') {
                    out += "'\\''";
                } else {
                    out.push_back(c);
                }
            }
            out.push_back('\'');
        }
    }
    return out;
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

TaskSpec parse_task_spec(const json& value, const std::string& path) {
    Params p(value, path);
    p.reject_unknown({"argv", "shell", "cwd", "env", "name", "labels", "stdin", "timeout", "kill_after",
                      "retries", "retry_delay", "after", "pool", "priority"});
    TaskSpec spec;
    auto argv = p.optional<std::vector<std::string>>("argv");
    spec.shell = p.optional<std::string>("shell");
    if (argv && spec.shell) {
        throw_invalid_params(path + ": give either argv or shell, not both");
    }
    if (argv) {
        if (argv->empty() || argv->front().empty()) {
            throw_invalid_params(path + ".argv: must name a command");
        }
        spec.argv = std::move(*argv);
    } else if (spec.shell) {
        if (spec.shell->empty()) {
            throw_invalid_params(path + ".shell: must not be empty");
        }
    } else {
        throw_invalid_params(path + ": a task needs argv (an array of strings) or shell (a string)");
    }

    spec.cwd = p.get_or<std::string>("cwd", "");
    if (!spec.cwd.empty() && spec.cwd.front() != '/') {
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
    if (spec.name && spec.name->size() > 256) {
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
        if (in->front() != '/' && spec.cwd.empty()) {
            throw_invalid_params(path + ".stdin: a relative path needs cwd");
        }
        spec.stdin_path = resolve_against(*in, spec.cwd);
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
    return spec;
}

json merge_spec_defaults(const json& defaults, const json& value) {
    if (!defaults.is_object() || !value.is_object()) {
        return value;
    }
    json merged = defaults;
    for (const auto& [k, v] : value.items()) {
        merged[k] = v;
    }
    // argv and shell exclude each other: an entry's own command replaces the default's.
    if (value.contains("argv") && !value.contains("shell")) {
        merged.erase("shell");
    } else if (value.contains("shell") && !value.contains("argv")) {
        merged.erase("argv");
    }
    return merged;
}

json to_json(const TaskSpec& spec, bool with_env) {
    json j = json::object();
    if (spec.shell) {
        j["shell"] = *spec.shell;
    } else {
        j["argv"] = spec.argv;
    }
    j["cwd"] = spec.cwd;
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
    return j;
}

}  // namespace mpctl::proto
