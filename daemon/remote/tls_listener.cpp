#include <array>
#include <openssl/ssl.h>
#include <stdexcept>
#include <unistd.h>

#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read_until.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>
#include <spdlog/spdlog.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/remote/tls_listener.hpp>
#include <mpctl/daemon/remote/token_table.hpp>
#include <mpctl/daemon/server/listener.hpp>
#include <mpctl/proto/jsonrpc.hpp>

namespace mpctl::daemon {

using asio::ip::tcp;

struct TlsListener::Shared {
    Shared(TokenTable& t, Listener& s) : tokens(t), sessions(s) {}
    TokenTable& tokens;
    Listener& sessions;
    AuthThrottle throttle;
    size_t unauthenticated = 0;
    LogThrottle handshake_log{std::chrono::seconds(10)};
    LogThrottle blocked_log{std::chrono::seconds(10)};
};

namespace {

constexpr std::chrono::seconds k_auth_deadline{10};
constexpr size_t k_max_first_line = 64 * 1024;

std::string held_text(uint64_t n) {
    return n == 0 ? "" : " (" + std::to_string(n) + " more like it not logged)";
}

// One remote client: the TLS side, and once authenticated the bridge to its Session (INNER is this side of
// the socketpair whose other end the Session reads).
class TlsConnection : public std::enable_shared_from_this<TlsConnection> {
  public:
    // IP: the peer's address without its port, what failures are counted by.
    TlsConnection(tcp::socket socket, asio::ssl::context& tls, std::shared_ptr<TlsListener::Shared> shared,
                  std::string address, std::string ip)
        : tls_(std::move(socket), tls),
          inner_(tls_.get_executor()),
          deadline_(tls_.get_executor()),
          shared_(std::move(shared)),
          address_(std::move(address)),
          ip_(std::move(ip)),
          first_(k_max_first_line) {
        ++shared_->unauthenticated;
    }
    ~TlsConnection() { leave_unauthenticated(); }

    void start() {
        deadline_.expires_after(k_auth_deadline);
        deadline_.async_wait([self = shared_from_this()](const std::error_code& ec) {
            if (!ec && self->unauthenticated_) {
                self->failed("no session.auth within 10 s");
                self->close();
            }
        });
        tls_.async_handshake(
            asio::ssl::stream_base::server,
            [self = shared_from_this()](const std::error_code& ec) { self->on_handshake(ec); });
    }

  private:
    void on_handshake(const std::error_code& ec) {
        if (closed_) {
            return;
        }
        if (ec) {
            // A plaintext client, an old TLS version, a scanner, a client whose pin did not match: not an
            // authentication, so not counted against the address (a stale pin must not lock its users out).
            if (auto held = shared_->handshake_log.admit(LogThrottle::Clock::now())) {
                spdlog::warn("remote client {}: TLS handshake failed: {}{}", address_, ec.message(),
                             held_text(*held));
            }
            close();
            return;
        }
        if (shared_->throttle.blocked(ip_, AuthThrottle::Clock::now())) {
            if (auto held = shared_->blocked_log.admit(LogThrottle::Clock::now())) {
                spdlog::warn("remote client {}: refused, {} failed authentications within {} s{}", address_,
                             AuthThrottle::k_max_failures, AuthThrottle::k_window.count(), held_text(*held));
            }
            close();
            return;
        }
        asio::async_read_until(
            tls_, first_, '\n',
            [self = shared_from_this()](const std::error_code& ec, size_t n) { self->on_first_line(ec, n); });
    }

    void on_first_line(const std::error_code& ec, size_t n) {
        if (closed_) {
            return;
        }
        if (ec) {
            if (ec == asio::error::not_found) {
                failed("a first line of more than 64 KiB");
            } else {
                // Gone before asking anything (a client whose pin did not match leaves here): not counted.
                spdlog::info("remote client {}: closed before session.auth", address_);
            }
            close();
            return;
        }
        std::string line(asio::buffers_begin(first_.data()), asio::buffers_begin(first_.data()) + n - 1);
        first_.consume(n);
        auto request = proto::parse_request_line(line);
        std::string id_text = request ? request->id_text : request.error().id_text;
        std::optional<RemoteGrant> grant;
        std::string why;
        const nlohmann::json* token = nullptr;
        if (request && request->params.is_object()) {
            if (auto it = request->params.find("token"); it != request->params.end() && it->is_string()) {
                token = &*it;
            }
        }
        if (!request) {
            why = "a first request that is not JSON-RPC";
        } else if (request->method != "session.auth") {
            why = "a first request of " + request->method.substr(0, 64) + ", not session.auth";
        } else if (token == nullptr) {
            why = "session.auth without a token";
        } else if (grant = shared_->tokens.verify(token->get<std::string>()); !grant) {
            why = "an unknown or revoked token";
        }
        if (!grant) {
            failed(why);
            reply_and_close(proto::encode_error_line(id_text, proto::ErrorCode::refused,
                                                     "authentication failed: " + why +
                                                         " (the first request must be session.auth with a "
                                                         "token of this daemon)"));
            return;
        }
        authenticated(std::move(*grant), id_text);
    }

    void authenticated(RemoteGrant grant, const std::string& id_text) {
        leave_unauthenticated();
        deadline_.cancel();
        grant.address = address_;
        spdlog::info("remote client {}: authenticated with token {}", address_, grant.token);
        std::string answer =
            proto::encode_result_line(id_text, {{"name", grant.token}, {"methods", grant.methods}});
        asio::local::stream_protocol::socket session_end(tls_.get_executor());
        std::error_code ec;
        asio::local::connect_pair(inner_, session_end, ec);
        if (ec) {
            spdlog::warn("remote client {}: cannot bridge it to a session: {}", address_, ec.message());
            close();
            return;
        }
        (void)common::set_cloexec(inner_.native_handle());
        (void)common::set_cloexec(session_end.native_handle());
        auto self = shared_from_this();
        std::weak_ptr<TlsConnection> weak = self;
        tracked_ = shared_->tokens.track(grant.token, [weak] {
            if (auto c = weak.lock()) {
                c->close();
            }
        });
        PeerCredentials peer;
        peer.uid = ::geteuid();
        peer.gid = ::getegid();
        peer.remote = std::make_shared<const RemoteGrant>(std::move(grant));
        // Past max_connections the Session is not made and the refusal comes back through INNER.
        (void)shared_->sessions.adopt(std::move(session_end), std::move(peer));
        // The answer first, then what the client sent after its first line, then the two pumps.
        auto out = std::make_shared<std::string>(std::move(answer));
        asio::async_write(tls_, asio::buffer(*out), [self, out](const std::error_code& ec, size_t) {
            if (ec) {
                self->close();
                return;
            }
            self->pump_down();
            if (self->first_.size() == 0) {
                self->pump_up();
                return;
            }
            asio::async_write(self->inner_, self->first_.data(), [self](const std::error_code& ec, size_t n) {
                self->first_.consume(n);
                if (ec) {
                    self->close();
                    return;
                }
                self->pump_up();
            });
        });
    }

    void pump_up() { pump(tls_, inner_, up_); }      // client to Session
    void pump_down() { pump(inner_, tls_, down_); }  // Session to client

    // Copies FROM to TO through BUFFER until either side ends, then closes both: a client that is gone
    // (a TLS client does not half-close) must look to its Session like one that hung up, so that what it
    // waits for is withdrawn.
    template <class From, class To>
    void pump(From& from, To& to, std::array<char, 16384>& buffer) {
        from.async_read_some(asio::buffer(buffer), [self = shared_from_this(), &from, &to, &buffer](
                                                       const std::error_code& ec, size_t n) {
            if (self->closed_) {
                return;
            }
            if (ec) {
                self->close();
                return;
            }
            asio::async_write(to, asio::buffer(buffer, n),
                              [self, &from, &to, &buffer](const std::error_code& ec, size_t) {
                                  if (ec) {
                                      self->close();
                                      return;
                                  }
                                  self->pump(from, to, buffer);
                              });
        });
    }

    void failed(const std::string& why) {
        shared_->throttle.fail(ip_, AuthThrottle::Clock::now());
        spdlog::warn("remote client {}: authentication failed: {}", address_, why);
    }

    void reply_and_close(std::string line) {
        auto out = std::make_shared<std::string>(std::move(line));
        asio::async_write(
            tls_, asio::buffer(*out),
            [self = shared_from_this(), out](const std::error_code&, size_t) { self->close(); });
    }

    void leave_unauthenticated() {
        if (unauthenticated_) {
            unauthenticated_ = false;
            --shared_->unauthenticated;
        }
    }

    void close() {
        if (closed_) {
            return;
        }
        closed_ = true;
        leave_unauthenticated();
        if (tracked_ != 0) {
            shared_->tokens.untrack(tracked_);
            tracked_ = 0;
        }
        deadline_.cancel();
        std::error_code ignored;
        inner_.close(ignored);
        tls_.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
        tls_.lowest_layer().close(ignored);
    }

    asio::ssl::stream<tcp::socket> tls_;
    asio::local::stream_protocol::socket inner_;
    asio::steady_timer deadline_;
    std::shared_ptr<TlsListener::Shared> shared_;
    std::string address_;
    std::string ip_;
    asio::streambuf first_;
    std::array<char, 16384> up_{};
    std::array<char, 16384> down_{};
    bool unauthenticated_ = true;
    bool closed_ = false;
    uint64_t tracked_ = 0;
};

tcp::endpoint parse_url(const std::string& url) {
    const std::string scheme = "tcp://";
    if (!url.starts_with(scheme)) {
        throw std::runtime_error("--listen " + url + ": expected tcp://HOST:PORT");
    }
    std::string rest = url.substr(scheme.size());
    auto colon = rest.rfind(':');
    if (colon == std::string::npos || colon + 1 == rest.size()) {
        throw std::runtime_error("--listen " + url + ": expected tcp://HOST:PORT (a port is needed)");
    }
    std::string host = rest.substr(0, colon);
    std::string port = rest.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    std::error_code ec;
    auto address = asio::ip::make_address(host, ec);
    if (ec) {
        throw std::runtime_error("--listen " + url + ": " + host + " is not an IP address");
    }
    unsigned long n = 0;
    try {
        size_t used = 0;
        n = std::stoul(port, &used);
        if (used != port.size() || n > 65535) {
            throw std::invalid_argument(port);
        }
    } catch (const std::exception&) {
        throw std::runtime_error("--listen " + url + ": " + port + " is not a port (0 to 65535)");
    }
    return {address, static_cast<unsigned short>(n)};
}

std::string url_of(const tcp::endpoint& e) {
    std::string host = e.address().to_string();
    return "tcp://" + (e.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(e.port());
}

}  // namespace

TlsListener::TlsListener(asio::io_context& io, const std::string& url, const TlsIdentity& identity,
                         TokenTable& tokens, Listener& sessions)
    : io_(io),
      tls_(asio::ssl::context::tls_server),
      acceptor_(io),
      backoff_(io),
      shared_(std::make_shared<Shared>(tokens, sessions)) {
    SSL_CTX* ctx = tls_.native_handle();
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        throw std::runtime_error("TLS 1.3 is not available in this OpenSSL");
    }
    std::error_code ec;
    tls_.use_certificate_chain_file(identity.cert_path, ec);
    if (!ec) {
        tls_.use_private_key_file(identity.key_path, asio::ssl::context::pem, ec);
    }
    if (ec) {
        throw std::runtime_error("TLS identity in " + identity.cert_path + ": " + ec.message());
    }
    tcp::endpoint endpoint = parse_url(url);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) {
        (void)common::set_cloexec(acceptor_.native_handle());
        acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    }
    if (!ec) {
        acceptor_.bind(endpoint, ec);
    }
    if (!ec) {
        acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        throw std::runtime_error("--listen " + url + ": " + ec.message());
    }
    address_ = url_of(acceptor_.local_endpoint());
}

TlsListener::~TlsListener() = default;

void TlsListener::start() {
    spdlog::info("listening on {} (TLS 1.3)", address_);
    accept_next();
}

void TlsListener::stop() {
    stopped_ = true;
    std::error_code ignored;
    acceptor_.close(ignored);
    backoff_.cancel();
}

void TlsListener::accept_next() {
    if (stopped_) {
        return;
    }
    acceptor_.async_accept([this](const std::error_code& ec, tcp::socket socket) {
        if (stopped_ || ec == asio::error::operation_aborted) {
            return;
        }
        if (ec) {
            // Out of descriptors, most likely: try again a little later rather than spin.
            spdlog::debug("accept on {}: {}", address_, ec.message());
            backoff_.expires_after(std::chrono::milliseconds(100));
            backoff_.async_wait([this](const std::error_code& e) {
                if (!e) {
                    accept_next();
                }
            });
            return;
        }
        (void)common::set_cloexec(socket.native_handle());
        std::error_code e;
        auto peer = socket.remote_endpoint(e);
        std::string address = e ? "unknown" : url_of(peer).substr(6);
        std::string ip = e ? "unknown" : peer.address().to_string();
        if (shared_->unauthenticated >= k_max_unauthenticated) {
            if (auto held = shared_->blocked_log.admit(LogThrottle::Clock::now())) {
                spdlog::warn("remote client {}: refused, {} connections are authenticating{}", address,
                             k_max_unauthenticated, held_text(*held));
            }
        } else {
            std::make_shared<TlsConnection>(std::move(socket), tls_, shared_, address, ip)->start();
        }
        accept_next();
    });
}

}  // namespace mpctl::daemon
