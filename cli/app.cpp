#include <charconv>
#include <cstdio>
#include <map>
#include <unistd.h>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/common/time.hpp>

namespace mpctl::cli {

void add_global_options(CLI::App& app, GlobalOptions& g) {
    app.add_option("--socket", g.socket,
                   "mpctld's socket (default: $MPCTL_SOCKET, then $XDG_RUNTIME_DIR/mpctl/mpctld.sock, then "
                   "/tmp/mpctl-$UID/mpctld.sock)")
        ->group("Global options");
    app.add_option("--state-dir", g.state_dir, "State dir for an autostarted mpctld")
        ->group("Global options");
    app.add_flag("--json", g.json, "Machine-readable output: JSON objects, one per line")
        ->group("Global options");
    app.add_flag("--no-autostart", g.no_autostart,
                 "Do not start mpctld when none answers (also: MPCTL_NO_AUTOSTART=1)")
        ->group("Global options");
    app.add_option(
           "--connect", g.connect,
           "A remote mpctld (`mpctld --listen`), over TLS 1.3 (default: $MPCTL_CONNECT); the token is "
           "$MPCTL_TOKEN")
        ->type_name("tcp://HOST:PORT")
        ->group("Global options");
    app.add_option("--fingerprint", g.fingerprint,
                   "The remote daemon's certificate, pinned: what `mpctld --print-fingerprint` prints there "
                   "(default: $MPCTL_FINGERPRINT)")
        ->type_name("SHA256:HEX")
        ->group("Global options");
    app.add_option("--token-file", g.token_file, "Read the remote daemon's token from FILE's first line")
        ->type_name("FILE")
        ->group("Global options");
}

std::optional<int64_t> lease_pid(const GlobalOptions& global, int64_t owner_pid, bool has_ttl) {
    if (owner_pid != 0) {
        return owner_pid;
    }
    if (!is_remote(global)) {
        return static_cast<int64_t>(::getppid());
    }
    if (has_ttl) {
        return std::nullopt;
    }
    throw CliError(exit_code::usage,
                   "a remote daemon cannot lease to a process of this machine: give --ttl S "
                   "(or --owner-pid PID, a process of the daemon's machine)");
}

std::optional<int64_t> release_pid(const GlobalOptions& global, int64_t owner_pid) {
    if (owner_pid != 0) {
        return owner_pid;
    }
    if (is_remote(global)) {
        return std::nullopt;
    }
    return static_cast<int64_t>(::getppid());
}

int64_t parse_id(const std::string& arg) {
    if (arg.empty() || arg.size() > 18 || arg.find_first_not_of("0123456789") != std::string::npos) {
        throw CliError(exit_code::usage, "not a task id: '" + arg + "' (ids are positive integers)");
    }
    int64_t id = std::stoll(arg);
    if (id <= 0) {
        throw CliError(exit_code::usage, "not a task id: '" + arg + "' (ids are positive integers)");
    }
    return id;
}

namespace {

std::map<const CLI::App*, std::string>& usage_tails() {
    static std::map<const CLI::App*, std::string> tails;
    return tails;
}

class UsageFormatter : public CLI::Formatter {
  public:
    std::string make_usage(const CLI::App* app, std::string name) const override {
        std::string usage = CLI::Formatter::make_usage(app, std::move(name));
        auto it = usage_tails().find(app);
        if (it != usage_tails().end() && !usage.empty() && usage.back() == '\n') {
            usage.insert(usage.size() - 1, " " + it->second);
        }
        return usage;
    }
};

}  // namespace

void set_usage_tail(const CLI::App* app, std::string tail) {
    usage_tails()[app] = std::move(tail);
}

void use_usage_tails(CLI::App& root) {
    root.formatter(std::make_shared<UsageFormatter>());
}

void TaskFilterOptions::add_to(CLI::App* sub, const std::vector<std::string>& allowed_states) {
    std::string names;
    for (const auto& s : allowed_states) {
        names += (names.empty() ? "" : ", ") + s;
    }
    sub->add_option("--state", states, "Only these states (" + names + ")")
        ->delimiter(',')
        ->check(CLI::IsMember(allowed_states));
    sub->add_option("--label", labels, "Only tasks with label K=V (or key K)");
    sub->add_option("--pool", pool, "Only tasks of this pool");
    sub->add_option("--name", name, "Only tasks with this name");
}

nlohmann::json TaskFilterOptions::params() const {
    nlohmann::json p = nlohmann::json::object();
    if (!states.empty()) {
        p["state"] = states;
    }
    if (!labels.empty()) {
        p["labels"] = labels;
    }
    if (!pool.empty()) {
        p["pool"] = pool;
    }
    if (!name.empty()) {
        p["name"] = name;
    }
    return p;
}

CLI::Validator whole_number(int64_t lo, int64_t hi) {
    return CLI::Validator(
        [lo, hi](std::string& text) -> std::string {
            int64_t value = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (ec != std::errc() || end != text.data() + text.size()) {
                return "not a number: '" + text + "'";
            }
            if (value < lo || value > hi) {
                return (hi == INT64_MAX
                            ? "must be " + std::to_string(lo) + " or more"
                            : "must be from " + std::to_string(lo) + " to " + std::to_string(hi)) +
                       ", got " + text;
            }
            return {};
        },
        "", "whole_number");
}

std::vector<int64_t> parse_ids(const std::vector<std::string>& args) {
    std::vector<int64_t> ids;
    ids.reserve(args.size());
    for (const auto& a : args) {
        ids.push_back(parse_id(a));
    }
    return ids;
}

double parse_seconds(const std::string& text, const char* flag) {
    double s = common::parse_duration_seconds(text);
    if (s < 0) {
        throw CliError(exit_code::usage, std::string(flag) + ": not a duration: '" + text +
                                             "' (seconds, or with a unit: 250ms, 30s, 5m, 2h)");
    }
    return s;
}

namespace {

// The word for a failure of mpctl itself, by its exit code.
const char* local_error_name(int code) {
    switch (code) {
        case exit_code::usage:
            return "usage";
        case exit_code::no_daemon:
            return "no_daemon";
        case exit_code::unknown_id:
            return "unknown_id";
        case exit_code::busy:
            return "busy";
        case exit_code::refused:
            return "refused";
        case exit_code::timeout:
            return "timeout";
        default:
            return "failed";
    }
}

}  // namespace

int report_error(bool json, const CliError& e) {
    std::fprintf(stderr, "mpctl: %s\n", e.what());
    if (json) {
        // The daemon's error object as it came (code, message, data.error), or one in the same shape for
        // failures of mpctl itself (code: the exit code); both say which exit code mpctl chose.
        nlohmann::json error = e.error().is_object()
                                   ? e.error()
                                   : nlohmann::json{{"code", e.code()},
                                                    {"message", e.what()},
                                                    {"data", {{"error", local_error_name(e.code())}}}};
        error["exit_code"] = e.code();
        print_json({{"error", error}});
    }
    return e.code();
}

}  // namespace mpctl::cli
