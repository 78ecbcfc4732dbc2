#pragma once
// Who is on the other end of a connection: from SO_PEERCRED at accept time for a local client; for a remote
// one (a TLS connection bridged to a Session, remote/tls_listener.hpp), the token it authenticated with,
// which limits the methods it may call.

#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace mpctl::daemon {

struct RemoteGrant {
    std::string token;                 // the token's name
    std::vector<std::string> methods;  // patterns: "queue.put", "queue.*", "*"
    std::string address;               // the peer's, for the log
};

struct PeerCredentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::shared_ptr<const RemoteGrant> remote = nullptr;  // null: a local client
};

// Whether METHOD matches one of PATTERNS ("*", a family's "noun.*", or the method itself). token.* is never
// a remote client's.
[[nodiscard]] inline bool method_allowed(const std::vector<std::string>& patterns, std::string_view method) {
    if (method.starts_with("token.")) {
        return false;
    }
    for (const auto& p : patterns) {
        if (p == "*" || p == method ||
            (p.ends_with(".*") && method.starts_with(std::string_view(p).substr(0, p.size() - 1)))) {
            return true;
        }
    }
    return false;
}

}  // namespace mpctl::daemon
