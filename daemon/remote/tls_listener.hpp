#pragma once
// TlsListener: remote clients (`mpctld --listen tcp://HOST:PORT`, PROTOCOL.md "Remote clients"). Accepts TCP
// connections, does the TLS 1.3 handshake with the daemon's own certificate, reads the first request, which
// must be session.auth with a valid token, and then bridges the connection to an ordinary Session over a
// socketpair: the Session is the local one, whatever the transport, and its peer carries the token's grant,
// which the Registry checks for every method. Nothing else of the daemon knows about TLS. Loop thread only.

#include <memory>
#include <string>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>

#include <mpctl/daemon/remote/auth_throttle.hpp>
#include <mpctl/daemon/remote/tls_identity.hpp>
#include <mpctl/daemon/server/log_throttle.hpp>

namespace mpctl::daemon {

class Listener;
class TokenTable;

class TlsListener {
  public:
    // Binds URL ("tcp://HOST:PORT", HOST an address, [v6] in brackets); throws std::runtime_error saying why
    // it cannot.
    TlsListener(asio::io_context& io, const std::string& url, const TlsIdentity& identity, TokenTable& tokens,
                Listener& sessions);
    ~TlsListener();
    TlsListener(const TlsListener&) = delete;
    TlsListener& operator=(const TlsListener&) = delete;

    void start();
    void stop();
    // "tcp://HOST:PORT" as bound (the port a 0 picked).
    [[nodiscard]] const std::string& address() const noexcept { return address_; }

    // Connections between accept and authentication at once: past it a new one is closed unread.
    static constexpr size_t k_max_unauthenticated = 256;

    struct Shared;  // what every connection uses (tls_listener.cpp)

  private:
    void accept_next();

    asio::io_context& io_;
    asio::ssl::context tls_;
    asio::ip::tcp::acceptor acceptor_;
    asio::steady_timer backoff_;
    std::string address_;
    std::shared_ptr<Shared> shared_;
    bool stopped_ = false;
};

}  // namespace mpctl::daemon
