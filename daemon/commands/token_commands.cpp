// Remote access: token.create, token.list, token.revoke (TokenTable), for local clients only (the Registry
// refuses token.* to a remote one), and session.auth, which a TLS connection's bridge answers itself
// (remote/tls_listener.hpp): over the Unix socket there is nothing to authenticate.

#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/commands/sync_params.hpp>
#include <mpctl/daemon/remote/token_table.hpp>

namespace mpctl::daemon {

using nlohmann::json;

namespace {

constexpr size_t k_max_patterns = 64;

void token_create(TokenTable& tokens, Call& call) {
    const auto& p = call.params;
    p.reject_unknown({"name", "methods"});
    std::string name = read_sync_name(p);
    std::vector<std::string> methods{"*"};
    if (auto given = p.optional<std::vector<std::string>>("methods")) {
        if (given->empty() || given->size() > k_max_patterns) {
            proto::throw_invalid_params("params.methods: 1 to 64 patterns");
        }
        for (size_t i = 0; i < given->size(); ++i) {
            if (!TokenTable::valid_pattern((*given)[i])) {
                proto::throw_invalid_params("params.methods[" + std::to_string(i) +
                                            "]: a method (queue.put), a family (queue.*) or *");
            }
        }
        methods = std::move(*given);
    }
    tokens.create(name, std::move(methods), call.responder);
}

}  // namespace

void register_token_commands(Registry& r, TokenTable& tokens) {
    r.add("token.create", [&tokens](Call& c) { token_create(tokens, c); });
    r.add("token.list", [&tokens](Call& c) {
        c.params.reject_unknown({});
        c.responder->result({{"tokens", tokens.list()}});
    });
    r.add("token.revoke", [&tokens](Call& c) {
        c.params.reject_unknown({"name"});
        tokens.revoke(read_sync_name(c.params), c.responder);
    });
    r.add("session.auth", [](Call& c) {
        c.params.reject_unknown({"token"});
        (void)c.params.required<std::string>("token");
        throw proto::RequestError(
            proto::ErrorCode::invalid_state,
            c.peer.remote ? "this session is authenticated already (token " + c.peer.remote->token + ")"
                          : "a local client needs no token: session.auth is for TLS connections");
    });
}

}  // namespace mpctl::daemon
