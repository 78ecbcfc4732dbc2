#pragma once
// TokenTable: the tokens remote clients authenticate with (token.* in PROTOCOL.md). A token's secret is
// shown once, at creation; the journal and this table keep only its SHA-256. Each token names the methods
// its sessions may call. Revoking a token ends its sessions at once. Loop thread only.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <mpctl/daemon/server/peer.hpp>
#include <mpctl/daemon/store/manager_rows.hpp>

namespace mpctl::daemon {

class Responder;

class TokenTable {
  public:
    explicit TokenTable(ManagerJournal& journal) : journal_(journal) {}

    void restore(const std::vector<TokenRow>& rows);

    // Makes token NAME for METHODS (patterns), journaled before RESPONDER hears its secret. Throws
    // invalid_state when NAME exists.
    void create(const std::string& name, std::vector<std::string> methods,
                const std::shared_ptr<Responder>& responder);
    [[nodiscard]] nlohmann::json list() const;
    // Forgets NAME and ends its sessions; throws unknown_id.
    void revoke(const std::string& name, const std::shared_ptr<Responder>& responder);

    // The token SECRET is, if any (compared in constant time).
    [[nodiscard]] std::optional<RemoteGrant> verify(const std::string& secret) const;

    // A session authenticated with token NAME: CLOSE ends it when the token is revoked. The id to forget
    // it by when the session ends first.
    uint64_t track(const std::string& name, std::function<void()> close);
    void untrack(uint64_t id);

    [[nodiscard]] static bool valid_pattern(const std::string& pattern);

  private:
    struct Token {
        std::string hash;
        std::vector<std::string> methods;
        int64_t created_at_ms = 0;
    };
    struct Tracked {
        std::string name;
        std::function<void()> close;
    };

    ManagerJournal& journal_;
    std::map<std::string, Token> tokens_;
    std::map<uint64_t, Tracked> sessions_;
    uint64_t next_session_ = 1;
};

// SHA-256 of TEXT in lowercase hex.
[[nodiscard]] std::string sha256_hex(const std::string& text);

}  // namespace mpctl::daemon
