#pragma once
// The parts of a man page that a CLI11 app defines (usage lines, options and their help), in roff: shared by
// mpctl(1) (cli/commands/man_cmd.cpp) and mpctld(8) (daemon/main.cpp). Header-only: common links no CLI11,
// the two programs that include this do.

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <mpctl/common/roff.hpp>

namespace mpctl::common::roff {

// The formatter APP's --help uses (a custom one keeps its additions, such as mpctl's usage tails).
inline std::shared_ptr<CLI::Formatter> formatter_of(const CLI::App& app) {
    auto f = std::dynamic_pointer_cast<CLI::Formatter>(app.get_formatter());
    return f ? f : std::make_shared<CLI::Formatter>();
}

// "mpctl lock run": APP's name after its parents'.
inline std::string command_path(const CLI::App& app) {
    std::string path = app.get_name();
    for (const CLI::App* p = app.get_parent(); p != nullptr; p = p->get_parent()) {
        path = p->get_name() + " " + path;
    }
    return path;
}

// APP's usage line as --help prints it, without "Usage: ", the command in bold: "\fBmpctl lock run\fR
// [OPTIONS] PATH [\-\-] CMD [ARG...]".
inline std::string usage(const CLI::App& app) {
    std::string path = command_path(app);
    std::string line = formatter_of(app)->make_usage(&app, path);
    if (auto at = line.find(path); at != std::string::npos) {
        line.erase(0, at + path.size());
    }
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) {
        line.pop_back();
    }
    while (!line.empty() && line.front() == ' ') {
        line.erase(0, 1);
    }
    return bold(path) + (line.empty() ? "" : " " + escape(line)) + "\n";
}

// APP's arguments (those with help) and options as --help lists them, as .TP entries: hidden ones (group "")
// left out, and so are those of the groups in SKIP_GROUPS and, unless WITH_HELP, -h/--help. A group other
// than "Options" is headed by its name.
inline std::string options(const CLI::App& app, const std::vector<std::string>& skip_groups = {},
                           bool with_help = false) {
    auto fmt = formatter_of(app);
    std::string out;
    const CLI::Option* help = app.get_help_ptr();
    for (const CLI::Option* opt : app.get_options()) {
        if (!opt->nonpositional() && opt->get_positional() && !opt->get_description().empty()) {
            out += option({opt->get_name(true, false), "", opt->get_description()});
        }
    }
    std::vector<std::string> groups;
    for (const CLI::Option* opt : app.get_options()) {
        if (!opt->nonpositional() || opt->get_group().empty()) {
            continue;
        }
        if (std::find(groups.begin(), groups.end(), opt->get_group()) == groups.end()) {
            groups.push_back(opt->get_group());
        }
    }
    for (const auto& group : groups) {
        if (std::find(skip_groups.begin(), skip_groups.end(), group) != skip_groups.end()) {
            continue;
        }
        std::string entries;
        for (const CLI::Option* opt : app.get_options()) {
            if (!opt->nonpositional() || opt->get_group() != group || (opt == help && !with_help)) {
                continue;
            }
            entries +=
                option({opt->get_name(false, true), fmt->make_option_opts(opt), opt->get_description()});
        }
        if (entries.empty()) {
            continue;
        }
        if (group != "Options") {
            out += ".PP\n" + italic(group + ":") + "\n";
        }
        out += entries;
    }
    return out;
}

// APP's subcommands that --help lists (not hidden), in their order.
inline std::vector<const CLI::App*> visible_subcommands(const CLI::App& app) {
    std::vector<const CLI::App*> out;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
        if (!sub->get_group().empty() && !sub->get_name().empty() && !sub->get_disabled()) {
            out.push_back(sub);
        }
    }
    return out;
}

// One .SS per command under APP, depth first: its usage, description, arguments and options (less the groups
// in SKIP_GROUPS), and its footer; a command with subcommands lists them, then has theirs.
inline std::string commands(const CLI::App& app, const std::vector<std::string>& skip_groups) {
    std::string out;
    for (const CLI::App* sub : visible_subcommands(app)) {
        out += subsection(command_path(*sub));
        out += usage(*sub);
        if (!sub->get_description().empty()) {
            out += paragraph(sub->get_description());
        }
        auto children = visible_subcommands(*sub);
        if (!children.empty()) {
            std::string names;
            for (const CLI::App* c : children) {
                names += (names.empty() ? "" : ", ") + c->get_name();
            }
            out += paragraph("Subcommands: " + names + ".");
        }
        std::string opts = options(*sub, skip_groups);
        if (!opts.empty()) {
            out += opts;
        }
        std::string footer = sub->get_footer();
        if (footer.find_first_not_of(" \n") != std::string::npos) {
            out += paragraph(footer);
        }
        out += commands(*sub, skip_groups);
    }
    return out;
}

}  // namespace mpctl::common::roff
