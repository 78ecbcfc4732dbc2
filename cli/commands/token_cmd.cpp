// mpctl token create|list|revoke: the tokens remote clients authenticate with (PROTOCOL.md "Remote
// clients", the token.* methods). Made, listed and revoked on the daemon's machine only: the daemon never
// allows token.* over TLS.

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/common/terminal_text.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

// token.* over the Unix socket only: said here rather than sending a remote daemon a refused request.
Client local_client(AppContext& ctx) {
    if (is_remote(ctx.global)) {
        throw CliError(exit_code::refused,
                       "tokens are made, listed and revoked on the daemon's machine, over its Unix socket "
                       "(a remote session may not call token.*): run mpctl token there, without --connect");
    }
    return Client::connect(ctx.global);
}

std::string methods_text(const json& token) {
    std::string out;
    for (const auto& m : token.value("methods", json::array())) {
        out += (out.empty() ? "" : ",") + common::terminal_text(m.get<std::string>());
    }
    return out;
}

}  // namespace

void add_token_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    (void)only;
    auto* token =
        app.add_subcommand("token", "Tokens for remote clients (mpctld --listen), made on this machine");
    token->require_subcommand(1);

    auto* create = token->add_subcommand("create", "Make token NAME and print its secret (shown only now)");
    auto name = std::make_shared<std::string>();
    auto methods = std::make_shared<std::vector<std::string>>();
    create->add_option("name", *name, "Token name")->required();
    create
        ->add_option("--methods", *methods,
                     "Only these methods: names, FAMILY.* or * (default: *, every method but token.*)")
        ->delimiter(',')
        ->type_name("PATTERN,...");
    create->footer(
        "A remote client gives the secret as MPCTL_TOKEN (or --token-file FILE), with --connect and "
        "--fingerprint.");
    create->callback([&ctx, name, methods] {
        ctx.action = [&ctx, name, methods] {
            json params = {{"name", *name}};
            if (!methods->empty()) {
                params["methods"] = *methods;
            }
            Client client = local_client(ctx);
            json made = client.call("token.create", params);
            if (ctx.global.json) {
                print_json(made);
            } else {
                write_out(1, made.at("token").get<std::string>() + "\n");
            }
            return exit_code::ok;
        };
    });

    auto* ls = token->add_subcommand("list", "Tokens: name, methods, when made (never the secrets)");
    ls->callback([&ctx] {
        ctx.action = [&ctx] {
            Client client = local_client(ctx);
            json result = client.call("token.list", json::object());
            if (ctx.global.json) {
                for (const auto& t : result.at("tokens")) {
                    print_json(t);
                }
                return exit_code::ok;
            }
            std::vector<std::vector<std::string>> rows{{"NAME", "METHODS", "CREATED"}};
            for (const auto& t : result.at("tokens")) {
                const json& created = t.value("created_at", json(nullptr));
                rows.push_back({common::terminal_text(t.at("name").get<std::string>()), methods_text(t),
                                created.is_string() ? created.get<std::string>() : "-"});
            }
            if (rows.size() > 1) {
                write_out(1, format_table(rows, {false, false, false}));
            }
            return exit_code::ok;
        };
    });

    auto* revoke = token->add_subcommand("revoke", "Revoke token NAME: its sessions are closed at once");
    auto revoke_name = std::make_shared<std::string>();
    revoke->add_option("name", *revoke_name, "Token name")->required();
    revoke->callback([&ctx, revoke_name] {
        ctx.action = [&ctx, revoke_name] {
            Client client = local_client(ctx);
            json result = client.call("token.revoke", {{"name", *revoke_name}});
            if (ctx.global.json) {
                print_json(result);
            }
            return exit_code::ok;
        };
    });
}

}  // namespace mpctl::cli
