#pragma once
// TLS 1.3 over TCP to a remote mpctld (PROTOCOL.md "Remote clients"), with OpenSSL: the TCP connection,
// the handshake, and the pin of the daemon's certificate. tls_transport.cpp is the only file of mpctl that
// knows OpenSSL.
//
// A static mpctl (MPCTL_STATIC_CLI) is built without it: relocating OpenSSL's tables at every start would
// cost each local command about 0.25 ms of CPU and 110 page faults (`perf stat -r 300 mpctl submit -- true`:
// 0.83 -> 1.07 ms). It is linked instead with tls_exec.cpp, whose hand_over_to_tls() replaces the process
// with mpctl-tls (the same sources with OpenSSL, built beside it) when a remote daemon is asked for.
//
// There is no certificate authority: after the handshake the SHA-256 of the certificate the daemon showed
// (its DER) must be the fingerprint the user gave, or nothing is sent at all. The socket is non-blocking;
// a read takes off the socket and out of OpenSSL everything that is there, so that nothing decrypted ever
// waits inside OpenSSL where poll() cannot see it.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <mpctl/cli/transport.hpp>

namespace mpctl::cli {

struct TlsTarget {
    std::string address;      // as given, for messages: "tcp://HOST:PORT"
    std::string host;         // a name, an IPv4 address or an IPv6 one (without its brackets)
    std::string port;         // digits
    std::string fingerprint;  // the pinned SHA-256 of the certificate's DER: 64 lowercase hex digits
};

// Connects to TARGET, shakes hands (TLS 1.3 and nothing else) and checks the daemon's certificate against
// the pinned fingerprint, all before DEADLINE, sending nothing of its own. Throws CliError: exit 3 when
// nothing answers there as a TLS 1.3 server, 6 when the certificate is not the pinned one (the message
// names both fingerprints).
[[nodiscard]] std::unique_ptr<Transport> connect_tls(const TlsTarget& target,
                                                     std::chrono::steady_clock::time_point deadline);

// Called by main() before a command that talks to a remote daemon runs: in a build with TLS, returns; in
// one without, runs mpctl-tls (beside this executable) with ARGV instead, or throws CliError if it cannot.
void hand_over_to_tls(char** argv);

// A SHA-256 fingerprint as people write it ("SHA256:" or not, hex digits with or without colons, any case)
// as 64 lowercase hex digits; nullopt if it is not one.
[[nodiscard]] std::optional<std::string> normalize_fingerprint(std::string_view text);

}  // namespace mpctl::cli
