#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/base64.hpp>
#include <mpctl/common/time.hpp>
#include <mpctl/daemon/remote/token_table.hpp>
#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

using nlohmann::json;

std::string sha256_hex(const std::string& text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &n, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("SHA-256 failed");
    }
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0xf];
    }
    return out;
}

namespace {

// "mpt_" and 32 random bytes in unpadded base64url: 43 characters.
std::string new_secret() {
    unsigned char bytes[32];
    if (RAND_bytes(bytes, sizeof bytes) != 1) {
        throw proto::RequestError(proto::ErrorCode::io_error, "no randomness for a token");
    }
    std::string b64 =
        common::base64_encode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
    while (!b64.empty() && b64.back() == '=') {
        b64.pop_back();
    }
    for (char& c : b64) {
        c = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    return "mpt_" + b64;
}

}  // namespace

bool TokenTable::valid_pattern(const std::string& p) {
    if (p == "*") {
        return true;
    }
    auto dot = p.find('.');
    if (dot == 0 || dot == std::string::npos) {
        return false;
    }
    std::string rest = p.substr(dot + 1);
    auto word = [](std::string_view w) {
        return !w.empty() &&
               std::all_of(w.begin(), w.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
    };
    return word(std::string_view(p).substr(0, dot)) && (rest == "*" || word(rest));
}

void TokenTable::restore(const std::vector<TokenRow>& rows) {
    for (const auto& row : rows) {
        json methods = proto::parse_json_text(row.methods);
        Token t{row.hash, {}, row.created_at_ms};
        if (methods.is_array()) {
            for (const auto& m : methods) {
                if (m.is_string()) {
                    t.methods.push_back(m.get<std::string>());
                }
            }
        }
        tokens_[row.name] = std::move(t);
    }
}

void TokenTable::create(const std::string& name, std::vector<std::string> methods,
                        const std::shared_ptr<Responder>& responder) {
    if (tokens_.contains(name)) {
        throw proto::RequestError(proto::ErrorCode::invalid_state,
                                  "a token named " + name + " exists: revoke it first", {{"name", name}});
    }
    std::string secret = new_secret();
    Token t{sha256_hex(secret), std::move(methods), common::now_unix_ms()};
    auto w = std::make_shared<ManagerWrite>();
    w->kind = ManagerWrite::Kind::put_token;
    w->name = name;
    w->key = t.hash;
    w->value = proto::dump_json(json(t.methods));
    w->created_at_ms = t.created_at_ms;
    json result{{"name", name},
                {"methods", t.methods},
                {"created_at", common::format_rfc3339_ms(t.created_at_ms)},
                {"token", secret}};
    // Taken at once, so that a second create of the name meanwhile is refused; given back if the commit
    // fails.
    tokens_[name] = std::move(t);
    journal_.write({std::move(w)}, [this, name, result, responder](common::Result<void> r) {
        if (!r) {
            tokens_.erase(name);
            responder->error(proto::ErrorCode::io_error,
                             "the journal could not record token " + name + " (" + r.error().message() + ")");
            return;
        }
        spdlog::info("token {} created for {}", name, result["methods"].dump());
        responder->result(result);
    });
}

json TokenTable::list() const {
    json out = json::array();
    for (const auto& [name, t] : tokens_) {
        out.push_back({{"name", name},
                       {"methods", t.methods},
                       {"created_at", common::format_rfc3339_ms(t.created_at_ms)}});
    }
    return out;
}

void TokenTable::revoke(const std::string& name, const std::shared_ptr<Responder>& responder) {
    if (!tokens_.erase(name)) {
        throw proto::RequestError(proto::ErrorCode::unknown_id, "no token " + name, {{"name", name}});
    }
    size_t closed = 0;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        if (it->second.name == name) {
            auto close = std::move(it->second.close);
            it = sessions_.erase(it);
            close();
            ++closed;
        } else {
            ++it;
        }
    }
    spdlog::info("token {} revoked; {} sessions closed", name, closed);
    auto w = std::make_shared<ManagerWrite>();
    w->kind = ManagerWrite::Kind::delete_token;
    w->name = name;
    journal_.write({std::move(w)}, [name, closed, responder](common::Result<void> r) {
        if (!r) {
            responder->error(proto::ErrorCode::io_error,
                             "token " + name +
                                 " no longer works here, but the journal could not record that (" +
                                 r.error().message() + "): a restart would bring it back");
            return;
        }
        responder->result({{"name", name}, {"revoked", true}, {"closed", closed}});
    });
}

std::optional<RemoteGrant> TokenTable::verify(const std::string& secret) const {
    std::string hash = sha256_hex(secret);
    std::optional<RemoteGrant> found;
    // Every token is compared, each in constant time: neither the time nor the order tells a guess apart.
    for (const auto& [name, t] : tokens_) {
        if (t.hash.size() == hash.size() && CRYPTO_memcmp(t.hash.data(), hash.data(), hash.size()) == 0) {
            found = RemoteGrant{name, t.methods, {}};
        }
    }
    return found;
}

uint64_t TokenTable::track(const std::string& name, std::function<void()> close) {
    uint64_t id = next_session_++;
    sessions_[id] = Tracked{name, std::move(close)};
    return id;
}

void TokenTable::untrack(uint64_t id) {
    sessions_.erase(id);
}

}  // namespace mpctl::daemon
