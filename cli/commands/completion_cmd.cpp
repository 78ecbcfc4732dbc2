// mpctl completion bash|zsh|fish: a shell completion script, written from the CLI11 tree itself (every
// command, its options and its arguments), so that it never drifts from the commands. mpctl __complete KIND:
// the values the scripts ask the daemon for (task ids, pools, queues), one per line. Both are hidden from
// --help.

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>

namespace mpctl::cli {

namespace completion {

using nlohmann::json;

// What a value is, when the daemon knows it: "ids" (pending and running tasks), "finished-ids", "pools",
// "queues"; "command" (a command line follows); "" any word (the shell completes files).
struct Rule {
    std::string_view command;  // a word of the command's path ("" any command)
    std::string_view name;     // the option's long name, or the positional's name
    std::string_view kind;
};
constexpr Rule k_rules[] = {
    {"", "--pool", "pools"},
    {"", "--after", "ids"},
    {"pool", "name", "pools"},
    {"queue", "name", "queues"},
    {"remove", "ids", "finished-ids"},
    {"restart", "ids", "finished-ids"},
    {"", "ids", "ids"},
    {"", "id", "ids"},
};
// The commands that run a command line after their arguments (CLI11 prefix commands that do), and which
// argument (from 0) is its first word.
struct Runner {
    std::string_view command;  // the path below mpctl
    size_t at;
};
constexpr Runner k_runners[] = {{"submit", 0}, {"run", 0}, {"map", 0}, {"lock run", 1}};
constexpr std::string_view k_kinds[] = {"ids", "finished-ids", "pools", "queues"};

struct OptionSpec {
    std::vector<std::string> names;  // -n --tail
    bool takes_value = false;
    std::string kind;
    std::string help;
};

struct ArgSpec {
    std::string kind;
    bool repeats = false;
};

struct CommandSpec {
    std::string path;  // "mpctl pool set"
    std::string help;
    std::vector<std::string> subcommands;
    std::vector<OptionSpec> options;  // those of the root are everyone's (fallthrough): not repeated here
    std::vector<ArgSpec> args;
};

bool in_path(const std::string& path, std::string_view word) {
    std::string padded = " " + path + " ";
    return word.empty() || padded.find(" " + std::string(word) + " ") != std::string::npos;
}

std::string kind_of(const std::string& path, std::string_view name) {
    for (const auto& r : k_rules) {
        if (r.name == name && in_path(path, r.command)) {
            return std::string(r.kind);
        }
    }
    return {};
}

bool visible(const CLI::App* app) {
    return !app->get_name().empty() && !app->get_group().empty();
}

void collect(const CLI::App* app, const std::string& path, const std::set<std::string>& global_names,
             std::vector<CommandSpec>& out) {
    CommandSpec spec;
    spec.path = path;
    spec.help = app->get_description();
    for (const CLI::Option* opt : app->get_options({})) {
        if (opt->get_positional() && !opt->nonpositional()) {
            spec.args.push_back({kind_of(path, opt->get_name()), opt->get_items_expected_max() > 1});
            continue;
        }
        if (opt->get_group().empty()) {
            continue;  // hidden
        }
        OptionSpec o;
        for (const auto& s : opt->get_snames()) {
            o.names.push_back("-" + s);
        }
        for (const auto& l : opt->get_lnames()) {
            o.names.push_back("--" + l);
        }
        if (o.names.empty() || (app->get_parent() != nullptr && global_names.contains(o.names.back()))) {
            continue;
        }
        o.takes_value = opt->get_items_expected_max() > 0;
        o.kind = kind_of(path, o.names.back());
        o.help = opt->get_description();
        spec.options.push_back(std::move(o));
    }
    if (app->get_prefix_command()) {
        // The words after its arguments: a command line, or more values (shm list-create).
        std::string below = path.substr(path.find(' ') + 1);
        auto runner = std::find_if(std::begin(k_runners), std::end(k_runners),
                                   [&](const Runner& r) { return r.command == below; });
        if (runner != std::end(k_runners)) {
            spec.args.resize(runner->at);
            spec.args.push_back({"command", false});
        } else {
            spec.args.push_back({"", true});
        }
    }
    std::vector<const CLI::App*> subs = app->get_subcommands([](const CLI::App* a) { return visible(a); });
    for (const CLI::App* sub : subs) {
        spec.subcommands.push_back(sub->get_name());
    }
    out.push_back(std::move(spec));
    for (const CLI::App* sub : subs) {
        collect(sub, path + " " + sub->get_name(), global_names, out);
    }
}

std::vector<CommandSpec> commands(const CLI::App& root) {
    std::set<std::string> global_names;
    for (const CLI::Option* opt : root.get_options({})) {
        for (const auto& l : opt->get_lnames()) {
            global_names.insert("--" + l);
        }
    }
    std::vector<CommandSpec> out;
    collect(&root, root.get_name(), global_names, out);
    return out;
}

// TEXT in single quotes for bash and zsh.
std::string sh_quote(std::string_view text) {
    std::string out = "'";
    for (char c : text) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

// TEXT in single quotes for fish (where \ and ' are escaped inside them).
std::string fish_quote(std::string_view text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "'";
}

std::string join(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
        out += (out.empty() ? "" : " ") + w;
    }
    return out;
}

// Per command, the words that go in each of the tables both bash and zsh use.
struct Tables {
    std::vector<std::pair<std::string, std::string>> subs, opts, valopts, args, optargs, help;
};

Tables tables(const std::vector<CommandSpec>& cmds) {
    Tables t;
    std::set<std::string> optargs_seen;
    for (const auto& c : cmds) {
        if (!c.subcommands.empty()) {
            t.subs.emplace_back(c.path, join(c.subcommands));
        }
        std::vector<std::string> opts;
        std::vector<std::string> valopts;
        for (const auto& o : c.options) {
            opts.insert(opts.end(), o.names.begin(), o.names.end());
            if (o.takes_value) {
                valopts.insert(valopts.end(), o.names.begin(), o.names.end());
            }
            if (!o.kind.empty() && optargs_seen.insert(o.names.back()).second) {
                t.optargs.emplace_back(o.names.back(), o.kind);
            }
            for (const auto& n : o.names) {
                t.help.emplace_back(c.path + " " + n, o.help);
            }
        }
        if (!opts.empty()) {
            t.opts.emplace_back(c.path, join(opts));
        }
        if (!valopts.empty()) {
            t.valopts.emplace_back(c.path, join(valopts));
        }
        std::vector<std::string> args;
        bool known = false;
        for (const auto& a : c.args) {
            args.push_back((a.kind.empty() ? std::string("-") : a.kind) + (a.repeats ? "..." : ""));
            known = known || !a.kind.empty();
        }
        if (known) {
            t.args.emplace_back(c.path, join(args));
        }
    }
    for (const auto& c : cmds) {
        for (const auto& s : c.subcommands) {
            auto it = std::find_if(cmds.begin(), cmds.end(),
                                   [&](const CommandSpec& d) { return d.path == c.path + " " + s; });
            t.help.emplace_back(c.path + " " + s, it != cmds.end() ? it->help : "");
        }
    }
    return t;
}

constexpr const char* k_tables_comment =
    "# Generated by `mpctl completion %s` from mpctl's own commands: regenerate rather than edit.\n"
    "# _mpctl_subs: each command's subcommands. _mpctl_opts: its options (mpctl's own are taken "
    "everywhere);\n"
    "# _mpctl_valopts: those that take a value. _mpctl_args: its arguments, where the daemon knows their\n"
    "# values: ids (pending and running tasks), finished-ids, pools, queues, command (a command line), - "
    "any\n"
    "# word; ... repeats. _mpctl_optargs: options whose values the daemon knows.\n";

enum class Shell { bash, zsh };

// An associative array of ROWS as SHELL writes one: bash's declare -gA NAME=([k]=v ...), zsh's NAME=(k v
// ...).
std::string shell_table(Shell shell, const char* name,
                        const std::vector<std::pair<std::string, std::string>>& rows) {
    std::string out = (shell == Shell::bash ? std::string("declare -gA ") : std::string()) + name + "=(\n";
    for (const auto& [key, value] : rows) {
        out += shell == Shell::bash ? "    [" + sh_quote(key) + "]=" + sh_quote(value) + "\n"
                                    : "    " + sh_quote(key) + " " + sh_quote(value) + "\n";
    }
    return out + ")\n";
}

// The comment that says what the tables are, and the tables every script has.
std::string shell_tables(Shell shell, const Tables& t) {
    char head[512];
    std::snprintf(head, sizeof head, k_tables_comment, shell == Shell::bash ? "bash" : "zsh");
    return head + shell_table(shell, "_mpctl_subs", t.subs) + shell_table(shell, "_mpctl_opts", t.opts) +
           shell_table(shell, "_mpctl_valopts", t.valopts) + shell_table(shell, "_mpctl_args", t.args) +
           shell_table(shell, "_mpctl_optargs", t.optargs);
}

std::string bash_script(const std::vector<CommandSpec>& cmds) {
    Tables t = tables(cmds);
    std::string out = "# bash completion for mpctl\n";
    out += shell_tables(Shell::bash, t);
    // clang-format off
    out += R"sh(
# Sets kind to what argument $2 (from 0) of command $1 is, by _mpctl_args.
_mpctl_argkind() {
    local -a args=(${_mpctl_args[$1]})
    kind=
    if (($2 < ${#args[@]})); then
        kind=${args[$2]}
    elif ((${#args[@]})) && [[ ${args[-1]} == *... ]]; then
        kind=${args[-1]}
    fi
    kind=${kind%...}
}

_mpctl() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd=mpctl word kind
    local -i i npos=0 skip=0
    local -a globals
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((skip)); then
            skip=0
        elif [[ $word == -- ]]; then
            # A command line follows: its first word is a command, the others are files.
            ((i == COMP_CWORD - 1)) && COMPREPLY=($(compgen -c -- "$cur" | sort -u))
            return
        elif [[ $word == -* ]]; then
            if [[ " ${_mpctl_valopts[$cmd]} ${_mpctl_valopts[mpctl]} " == *" $word "* ]]; then
                skip=1
                [[ " ${_mpctl_valopts[mpctl]} " == *" $word "* ]] && globals+=("$word" "${COMP_WORDS[i+1]}")
            fi
        elif [[ " ${_mpctl_subs[$cmd]} " == *" $word "* ]]; then
            cmd+=" $word"
            npos=0
        else
            _mpctl_argkind "$cmd" $npos
            [[ $kind == command ]] && return  # the command's own arguments: files
            npos+=1
        fi
    done
    kind=
    if ((skip)); then
        kind=${_mpctl_optargs[$prev]}
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${_mpctl_opts[$cmd]} ${_mpctl_opts[mpctl]}" -- "$cur"))
        return
    elif [[ -n ${_mpctl_subs[$cmd]} ]]; then
        COMPREPLY=($(compgen -W "${_mpctl_subs[$cmd]}" -- "$cur"))
        return
    else
        _mpctl_argkind "$cmd" $npos
    fi
    case $kind in
        ids | finished-ids | pools | queues)
            COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${globals[@]}" __complete "$kind" 2>/dev/null)" -- "$cur")) ;;
        command) COMPREPLY=($(compgen -c -- "$cur" | sort -u)) ;;
    esac
}
complete -o default -F _mpctl mpctl
)sh";
    // clang-format on
    return out;
}

std::string zsh_script(const std::vector<CommandSpec>& cmds) {
    Tables t = tables(cmds);
    std::string out = "#compdef mpctl\n# zsh completion for mpctl\n";
    out += "typeset -gA _mpctl_subs _mpctl_opts _mpctl_valopts _mpctl_args _mpctl_optargs _mpctl_help\n";
    out += shell_tables(Shell::zsh, t);
    out += "# _mpctl_help: what each command and option does.\n" +
           shell_table(Shell::zsh, "_mpctl_help", t.help);
    // clang-format off
    out += R"sh(
# Sets kind to what argument $2 (from 0) of command $1 is, by _mpctl_args.
_mpctl_argkind() {
    local -a args=(${=_mpctl_args[$1]})
    kind=
    if (($2 < $#args)); then
        kind=${args[$2+1]}
    elif [[ ${args[-1]} == *... ]]; then
        kind=${args[-1]}
    fi
    kind=${kind%...}
}

_mpctl() {
    local cmd=mpctl word kind prev=${words[CURRENT-1]} cur=${words[CURRENT]}
    local -i i npos=0 skip=0
    local -a globals candidates
    for ((i = 2; i < CURRENT; i++)); do
        word=${words[i]}
        if ((skip)); then
            skip=0
        elif [[ $word == -- ]]; then
            # A command line follows: complete it as a command of its own.
            words=("${(@)words[i+1,-1]}")
            ((CURRENT -= i))
            _normal
            return
        elif [[ $word == -* ]]; then
            if [[ " ${_mpctl_valopts[$cmd]} ${_mpctl_valopts[mpctl]} " == *" $word "* ]]; then
                skip=1
                [[ " ${_mpctl_valopts[mpctl]} " == *" $word "* ]] && globals+=("$word" "${words[i+1]}")
            fi
        elif [[ " ${_mpctl_subs[$cmd]} " == *" $word "* ]]; then
            cmd+=" $word"
            npos=0
        else
            _mpctl_argkind "$cmd" $npos
            if [[ $kind == command ]]; then
                words=("${(@)words[i,-1]}")
                ((CURRENT -= i - 1))
                _normal
                return
            fi
            npos+=1
        fi
    done
    kind=
    if ((skip)); then
        kind=${_mpctl_optargs[$prev]}
    elif [[ $cur == -* ]]; then
        for word in ${=_mpctl_opts[$cmd]} ${=_mpctl_opts[mpctl]}; do
            candidates+=("$word:${_mpctl_help[$cmd $word]:-${_mpctl_help[mpctl $word]}}")
        done
        _describe -t options option candidates
        return
    elif [[ -n ${_mpctl_subs[$cmd]} ]]; then
        for word in ${=_mpctl_subs[$cmd]}; do
            candidates+=("$word:${_mpctl_help[$cmd $word]}")
        done
        _describe -t commands command candidates
        return
    else
        _mpctl_argkind "$cmd" $npos
    fi
    case $kind in
        ids | finished-ids | pools | queues)
            candidates=(${(f)"$(${words[1]} $globals __complete $kind 2>/dev/null)"})
            compadd -a candidates ;;
        command) _command_names -e ;;
        *) _files ;;
    esac
}

if [[ $funcstack[1] == _mpctl ]]; then
    _mpctl "$@"  # autoloaded from $fpath: this file is the first call
else
    compdef _mpctl mpctl  # sourced
fi
)sh";
    // clang-format on
    return out;
}

// A fish list variable, wrapped.
std::string fish_list(const char* name, const std::vector<std::string>& items) {
    std::string out = std::string("set -g ") + name;
    size_t width = out.size();
    for (const auto& i : items) {
        std::string q = fish_quote(i);
        if (width + 1 + q.size() > 110) {
            out += " \\\n   ";
            width = 3;
        }
        out += " " + q;
        width += 1 + q.size();
    }
    return out + "\n";
}

std::string fish_script(const std::vector<CommandSpec>& cmds) {
    std::vector<std::string> paths;
    std::vector<std::string> valopts;
    std::vector<std::string> runners;
    for (const auto& c : cmds) {
        if (&c != &cmds.front()) {
            paths.push_back(c.path);
        }
        for (size_t i = 0; i < c.args.size(); ++i) {
            if (c.args[i].kind == "command") {
                runners.push_back(c.path + " " + std::to_string(i));
            }
        }
        for (const auto& o : c.options) {
            for (const auto& n : o.names) {
                if (o.takes_value) {
                    valopts.push_back(c.path + " " + n);
                }
            }
        }
    }
    std::string out =
        "# fish completion for mpctl\n"
        "# Generated by `mpctl completion fish` from mpctl's own commands: regenerate rather than edit.\n\n"
        "# Every command below mpctl; the options that take a value (\"mpctl\" ones everywhere); the "
        "argument\n"
        "# (from 0) that starts a command line.\n";
    out += fish_list("__mpctl_commands", paths) + fish_list("__mpctl_valopts", valopts) +
           fish_list("__mpctl_runners", runners);
    // clang-format off
    out += R"sh(
# The command being completed ("mpctl pool set") and how many of its arguments come before this word ("-"
# when this word is an option's value); in a command line (after --, or a command's own), "--" and where it
# starts: the index of its first word in (commandline -opc), one past its end when that word is this one.
function __mpctl_state
    set -l words (commandline -opc)
    set -l cmd mpctl
    set -l npos 0
    set -l skip 0
    for i in (seq 2 (count $words))
        set -l word $words[$i]
        if test $skip = 1
            set skip 0
        else if test "$word" = --
            printf '%s\n' -- (math $i + 1)
            return
        else if string match -q -- '-*' $word
            if contains -- "$cmd $word" $__mpctl_valopts; or contains -- "mpctl $word" $__mpctl_valopts
                set skip 1
            end
        else if contains -- "$cmd $word" $__mpctl_commands
            set cmd "$cmd $word"
            set npos 0
        else if contains -- "$cmd $npos" $__mpctl_runners
            printf '%s\n' -- $i
            return
        else
            set npos (math $npos + 1)
        end
    end
    test $skip = 1; and set npos -
    printf '%s\n' $cmd $npos
end

# Whether this word is a subcommand of CMD, or one of its arguments.
function __mpctl_in --argument-names cmd
    set -l state (__mpctl_state)
    test "$state[1]" = "$cmd" -a "$state[2]" != -
end

# Whether this word is an option of CMD (of every command when there is no CMD), or an option's value: not
# a word of a command line.
function __mpctl_opt --argument-names cmd
    set -l state (__mpctl_state)
    test "$state[1]" != --; or return 1
    test -z "$cmd"; or test "$state[1]" = "$cmd"
end

# Whether this word is in a command line, which completes as if typed alone.
function __mpctl_in_command_line
    set -l state (__mpctl_state)
    test "$state[1]" = --
end

# What fish offers for the command line this word is in, as if typed alone.
function __mpctl_command_line
    set -l state (__mpctl_state)
    test "$state[1]" = --; or return
    set -l words (commandline -opc)
    __fish_complete_subcommand --commandline $words[$state[2]..-1] (commandline -ct)
end

# Whether this word is argument N (from 0) of CMD; N+: argument N or a later one.
function __mpctl_arg --argument-names cmd n
    set -l state (__mpctl_state)
    test "$state[1]" = "$cmd" -a "$state[2]" != -; or return 1
    if string match -q -- '*+' $n
        test $state[2] -ge (string trim -r -c + -- $n)
    else
        test $state[2] -eq $n
    end
end

# What the daemon knows (ids, finished-ids, pools, queues), one a line; nothing when none runs.
function __mpctl_values --argument-names kind
    set -l words (commandline -opc)
    set -l globals
    for i in (seq 2 (count $words))
        if contains -- "mpctl $words[$i]" $__mpctl_valopts
            set -a globals $words[$i] $words[(math $i + 1)]
        end
    end
    $words[1] $globals __complete $kind 2>/dev/null
end
)sh";
    // clang-format on
    auto option_line = [](const std::string& cond, const OptionSpec& o) {
        // Its value too is completed only where this holds.
        std::string line = "complete -c mpctl -n " +
                           fish_quote(cond.empty() ? "__mpctl_opt" : "__mpctl_opt " + fish_quote(cond));
        for (const auto& n : o.names) {
            line += n.starts_with("--") ? " -l " + n.substr(2)
                    : n.size() == 2     ? " -s " + n.substr(1)
                                        : " -o " + n.substr(1);
        }
        if (!o.kind.empty()) {
            line += " -x -a " + fish_quote("(__mpctl_values " + o.kind + ")");
        } else if (o.takes_value) {
            line += " -r";
        }
        return line + " -d " + fish_quote(o.help) + "\n";
    };
    out +=
        "\n# A command line: what its command takes\n"
        "complete -c mpctl -n __mpctl_in_command_line -x -a '(__mpctl_command_line)'\n";
    for (const auto& c : cmds) {
        out += "\n# " + c.path + "\n";
        for (const auto& s : c.subcommands) {
            auto it = std::find_if(cmds.begin(), cmds.end(),
                                   [&](const CommandSpec& d) { return d.path == c.path + " " + s; });
            out += "complete -c mpctl -n " + fish_quote("__mpctl_in " + fish_quote(c.path)) + " -f -a " + s +
                   " -d " + fish_quote(it != cmds.end() ? it->help : "") + "\n";
        }
        bool root = &c == &cmds.front();
        for (const auto& o : c.options) {
            out += option_line(root ? "" : c.path, o);
        }
        for (size_t i = 0; i < c.args.size(); ++i) {
            const auto& a = c.args[i];
            if (a.kind.empty()) {
                continue;
            }
            std::string cond =
                "__mpctl_arg " + fish_quote(c.path) + " " + std::to_string(i) + (a.repeats ? "+" : "");
            std::string values =
                a.kind == "command" ? "(__fish_complete_command)" : "(__mpctl_values " + a.kind + ")";
            out += "complete -c mpctl -n " + fish_quote(cond) + " -f -a " + fish_quote(values) + "\n";
        }
    }
    return out;
}

// Values for the scripts: nothing at all, and exit 0, when no daemon answers (never starting one).
int print_values(AppContext& ctx, const std::string& kind) {
    try {
        auto client = Client::try_connect(ctx.global);
        if (!client) {
            return exit_code::ok;
        }
        std::string out;
        if (kind == "ids" || kind == "finished-ids") {
            json states = kind == "ids" ? json::array({"pending", "running"})
                                        : json::array({"succeeded", "failed", "cancelled"});
            json params = {{"state", states}};
            if (kind == "finished-ids") {
                params["limit"] = 200;  // the most recent
            }
            json result = client->call("task.list", params);
            for (const auto& t : result.at("tasks")) {
                out += std::to_string(t.at("id").get<int64_t>()) + "\n";
            }
        } else {
            json result = client->call(kind == "pools" ? "pool.list" : "queue.list", json::object());
            for (const auto& p : result.at(kind)) {
                out += p.at("name").get<std::string>() + "\n";
            }
        }
        write_out(1, out);
    } catch (const std::exception&) {
        // Completion says nothing rather than an error in the middle of a command line.
    }
    return exit_code::ok;
}

}  // namespace completion

void add_completion_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    if (wanted(only, "completion")) {
        auto* sub = app.add_subcommand("completion", "Print a completion script for bash, zsh or fish");
        sub->group("");  // hidden
        auto shell = std::make_shared<std::string>();
        auto output = std::make_shared<std::string>();
        sub->add_option("shell", *shell, "bash, zsh or fish")
            ->required()
            ->check(CLI::IsMember({"bash", "zsh", "fish"}));
        sub->add_option("-o,--output", *output, "Write it to FILE instead of stdout")->type_name("FILE");
        sub->callback([&ctx, &app, shell, output] {
            ctx.action = [&app, shell, output] {
                auto cmds = completion::commands(app);
                std::string script = *shell == "bash"  ? completion::bash_script(cmds)
                                     : *shell == "zsh" ? completion::zsh_script(cmds)
                                                       : completion::fish_script(cmds);
                if (output->empty()) {
                    write_out(1, script);
                    return exit_code::ok;
                }
                std::ofstream file(*output, std::ios::binary | std::ios::trunc);
                file << script;
                file.close();
                if (!file) {
                    throw CliError(exit_code::failure, "cannot write " + *output);
                }
                return exit_code::ok;
            };
        });
    }
    if (wanted(only, "__complete")) {
        auto* sub = app.add_subcommand("__complete", "Print values for completion: " +
                                                         std::string("ids, finished-ids, pools or queues"));
        sub->group("");  // hidden
        auto kind = std::make_shared<std::string>();
        std::vector<std::string> kinds(std::begin(completion::k_kinds), std::end(completion::k_kinds));
        sub->add_option("kind", *kind, "What to print")->required()->check(CLI::IsMember(kinds));
        sub->callback([&ctx, kind] {
            ctx.action = [&ctx, kind] {
                return completion::print_values(ctx, *kind);
            };
        });
    }
}

}  // namespace mpctl::cli
