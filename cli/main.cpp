// mpctl: the command-line client of mpctld. Builds the CLI11 app from an explicit list of command groups,
// runs the chosen command and turns every failure into "mpctl: <message>" and the exit code README.md's "Exit
// codes" gives it.

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <utility>

#include <CLI/CLI.hpp>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/tls_transport.hpp>
#include <mpctl/common/suggest.hpp>
#include <mpctl/proto/errors.hpp>

namespace {

// The subcommand's name: the first word that is neither an option nor the value of a global option.
std::string_view first_command_word(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string_view a(argv[i]);
        if (a == "--") {
            break;
        }
        if (a == "--socket" || a == "--state-dir" || a == "--connect" || a == "--fingerprint" ||
            a == "--token-file") {
            ++i;
            continue;
        }
        if (!a.starts_with("-")) {
            return a;
        }
    }
    return {};
}

// The parsed command group deepest down (the app itself if no subcommand was parsed).
CLI::App* deepest_parsed(CLI::App* app) {
    for (;;) {
        CLI::App* next = nullptr;
        for (CLI::App* sub : app->get_subcommands({})) {
            if (sub->parsed()) {
                next = sub;
            }
        }
        if (next == nullptr) {
            return app;
        }
        app = next;
    }
}

// What to say when GROUP needs a subcommand and WORD (the word where one was expected; empty: none) is not
// one: the word, and the nearest command, as git says it.
std::string unknown_command(CLI::App* group, std::string_view word) {
    std::vector<std::string> names;
    for (CLI::App* sub : group->get_subcommands({})) {
        if (!sub->get_group().empty()) {  // hidden ones (completion, __man) are neither listed nor suggested
            names.push_back(sub->get_name());
        }
    }
    bool top = group->get_parent() == nullptr;
    std::string help = top ? std::string("mpctl --help") : "mpctl " + group->get_name() + " --help";
    std::string out = top ? std::string() : group->get_name() + ": ";
    if (word.empty()) {
        std::string list;
        for (const auto& n : names) {
            list += (list.empty() ? "" : ", ") + n;
        }
        return out + "which command? (" + list + "; see " + help + ")";
    }
    out += "unknown command '" + std::string(word) + "'";
    if (auto near = mpctl::common::nearest_word(word, names)) {
        out += "; did you mean '" + *near + "'?";
    } else {
        out += " (see " + help + ")";
    }
    return out;
}

// The first word after GROUP's own name on the command line that is not an option.
std::string_view word_after(int argc, char** argv, CLI::App* group) {
    int i = 1;
    if (group->get_parent() != nullptr) {
        while (i < argc && group->get_name() != argv[i]) {
            ++i;
        }
        ++i;
    } else {
        return first_command_word(argc, argv);
    }
    for (; i < argc; ++i) {
        std::string_view a(argv[i]);
        if (a == "--") {
            break;
        }
        if (!a.starts_with("-")) {
            return a;
        }
    }
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    using namespace mpctl::cli;
    AppContext ctx;
    CLI::App app{"mpctl: worker pools, futures, pipelines, shared memory and locks for every process",
                 "mpctl"};
    use_usage_tails(app);
    add_global_options(app, ctx.global);
    app.set_version_flag("--version", MPCTL_VERSION);
    app.require_subcommand(1);
    // Global flags may follow the subcommand too: `mpctl list --json`.
    app.fallthrough();

    using Adder = void (*)(CLI::App&, AppContext&, std::string_view);
    static constexpr std::pair<std::string_view, Adder> k_commands[] = {
        {"submit", add_task_submit_commands},
        {"run", add_task_submit_commands},
        {"status", add_task_query_commands},
        {"list", add_task_query_commands},
        {"wait", add_task_wait_commands},
        {"as-completed", add_task_wait_commands},
        {"result", add_task_wait_commands},
        {"logs", add_task_logs_commands},
        {"follow", add_task_logs_commands},
        {"cancel", add_task_control_commands},
        {"kill", add_task_control_commands},
        {"remove", add_task_control_commands},
        {"clean", add_task_control_commands},
        {"restart", add_task_control_commands},
        {"daemon", add_daemon_commands},
        {"pool", add_pool_commands},
        {"map", add_map_commands},
        {"lock", add_lock_commands},
        {"sem", add_sync_commands},
        {"event", add_sync_commands},
        {"barrier", add_sync_commands},
        {"shm", add_shm_commands},
        {"queue", add_queue_commands},
        {"kv", add_kv_commands},
        {"token", add_token_commands},
        {"__man", add_man_command},               // hidden: mpctl(1) in roff, of every command group
        {"completion", add_completion_commands},  // hidden: shell completion scripts, of every command
        {"__complete", add_completion_commands},  // hidden: values for them (task ids, pools, queues)
    };
    std::string_view command = first_command_word(argc, argv);
    Adder only = nullptr;
    for (const auto& [name, add] : k_commands) {
        if (name == command) {
            only = add;
        }
    }
    // __man documents every command, completion completes them: they need them all built.
    if (only != nullptr && command != "__man" && command != "completion") {
        only(app, ctx, command);
    } else {
        // Help, or an unknown command: build everything so CLI11 can list or suggest.
        Adder last = nullptr;
        for (const auto& [name, add] : k_commands) {
            if (add != last) {
                add(app, ctx, {});
                last = add;
            }
        }
    }

    // --json decides how errors look, even when parsing fails before CLI11 has read it.
    bool json_wanted = false;
    for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i) {
        json_wanted = json_wanted || std::string_view(argv[i]) == "--json";
    }

    // Cut at the first "--": what follows is a command line, never mpctl's options.
    std::vector<std::string> args;
    for (int i = argc - 1; i >= 1; --i) {
        args.emplace_back(argv[i]);  // CLI11 takes them reversed
    }
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--") {
            ctx.has_separator = true;
            ctx.after_separator.assign(argv + i + 1, argv + argc);
            args.erase(args.begin(), args.begin() + (argc - i));
            break;
        }
    }
    try {
        app.parse(args);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // CLI11's own exit codes are not ours: every usage error is 2.
        if (argc <= 1) {
            std::fprintf(stderr, "%s", app.help().c_str());
        }
        CLI::App* group = deepest_parsed(&app);
        // One vector: get_subcommands makes a new one at each call.
        const std::vector<CLI::App*> subs = group->get_subcommands({});
        if (group->get_require_subcommand_min() > 0 && !subs.empty() &&
            std::none_of(subs.begin(), subs.end(), [](CLI::App* s) { return s->parsed(); })) {
            return report_error(json_wanted, CliError(exit_code::usage,
                                                      unknown_command(group, word_after(argc, argv, group))));
        }
        std::string_view what = e.what();
        if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr &&
            (what.starts_with("ids is required") || what.starts_with("id is required"))) {
            return report_error(json_wanted, CliError(exit_code::usage, "missing task id (mpctl " +
                                                                            group->get_name() + " ID)"));
        }
        return report_error(json_wanted, CliError(exit_code::usage, e.what()));
    } catch (const CliError& e) {
        return report_error(json_wanted, e);
    }
    if (ctx.has_separator && !ctx.separator_used) {
        return report_error(json_wanted,
                            CliError(exit_code::usage, "this command takes no command line after \"--\""));
    }
    if (!ctx.action) {
        return report_error(json_wanted, CliError(exit_code::usage, "no command given"));
    }
    try {
        if (is_remote(ctx.global)) {
            hand_over_to_tls(argv);  // a static mpctl has no TLS of its own (tls_transport.hpp)
        }
        return ctx.action();
    } catch (const CliError& e) {
        return report_error(json_wanted, e);
    } catch (const mpctl::proto::RequestError& e) {
        // A reply the daemon should not have sent (a status object that does not parse).
        return report_error(json_wanted,
                            CliError(exit_code::refused, std::string("unexpected reply: ") + e.what()));
    } catch (const std::exception& e) {
        return report_error(json_wanted, CliError(exit_code::failure, e.what()));
    }
}
