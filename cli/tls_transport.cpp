#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <vector>

#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/tls_transport.hpp>

namespace mpctl::cli {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t k_read_chunk = 64 * 1024;
// A peer that vanishes (a machine switched off, a cable pulled) sends no FIN: keepalive probes find it out
// after 30 s of silence and 3 unanswered probes 10 s apart, and data it does not acknowledge for 60 s ends
// the connection. Waits for the daemon's answers themselves have no limit, as over the Unix socket (a
// task.wait may take hours).
constexpr int k_keepalive_idle_s = 30;
constexpr int k_keepalive_interval_s = 10;
constexpr int k_keepalive_probes = 3;
constexpr unsigned k_user_timeout_ms = 60'000;

// OpenSSL writes to the socket with write(2), which raises SIGPIPE on a connection the peer has closed. For
// the span of one OpenSSL call, SIGPIPE is blocked, and one it raised is taken back before it is unblocked:
// the call sees EPIPE instead. (mpctl is single-threaded.)
class SigpipeBlocked {
  public:
    SigpipeBlocked() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    }
    SigpipeBlocked(const SigpipeBlocked&) = delete;
    SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;
    ~SigpipeBlocked() {
        if (sigismember(&old_, SIGPIPE) == 0) {
            sigset_t pending;
            sigemptyset(&pending);
            if (::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
                timespec zero{};
                while (::sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
                }
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }

  private:
    sigset_t pipe_{};
    sigset_t old_{};
};

// What OpenSSL's error queue says (and empties it), or FALLBACK when it says nothing.
std::string openssl_errors(const std::string& fallback) {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        // "error:0A00010B:SSL routines::wrong version number": the reason is what a person can read.
        std::string_view text(buf);
        if (auto colon = text.rfind(':'); colon != std::string_view::npos && colon + 1 < text.size()) {
            text.remove_prefix(colon + 1);
        }
        if (!out.empty()) {
            out += "; ";
        }
        out += text;
    }
    return out.empty() ? fallback : out;
}

// Milliseconds until DEADLINE for poll(), at least 0.
int ms_until(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 3'600'000));
}

// Waits until FD has EVENTS, or DEADLINE (none: no limit). False on the deadline.
bool wait_for(int fd, short events, std::optional<Clock::time_point> deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        int n = ::poll(&p, 1, deadline ? ms_until(*deadline) : -1);
        if (n > 0) {
            return true;
        }
        if (n == 0) {
            return false;
        }
        if (errno != EINTR) {
            return true;  // let the caller's next call report what is wrong
        }
    }
}

std::string seconds_text(Clock::duration d) {
    auto s = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return std::to_string((s + 500) / 1000) + " s";
}

void set_int_option(int fd, int level, int name, int value) {
    (void)::setsockopt(fd, level, name, &value, sizeof value);
}

// A TCP connection to ADDR, made before DEADLINE. Non-blocking, close-on-exec.
common::Result<common::UniqueFd> connect_one(const addrinfo& addr, Clock::time_point deadline) {
    common::UniqueFd fd(::socket(addr.ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        return common::sys_error("socket");
    }
    int rc = 0;
    do {
        rc = ::connect(fd.get(), addr.ai_addr, addr.ai_addrlen);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno != EINPROGRESS) {
        return common::sys_error("connect");
    }
    if (rc != 0) {
        if (!wait_for(fd.get(), POLLOUT, deadline)) {
            return common::sys_error("connect", ETIMEDOUT);
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            return common::sys_error("connect");
        }
        if (err != 0) {
            return common::sys_error("connect", err);
        }
    }
    // Requests are small lines answered at once: no Nagle delay behind an unacknowledged one.
    set_int_option(fd.get(), IPPROTO_TCP, TCP_NODELAY, 1);
    set_int_option(fd.get(), SOL_SOCKET, SO_KEEPALIVE, 1);
    set_int_option(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE, k_keepalive_idle_s);
    set_int_option(fd.get(), IPPROTO_TCP, TCP_KEEPINTVL, k_keepalive_interval_s);
    set_int_option(fd.get(), IPPROTO_TCP, TCP_KEEPCNT, k_keepalive_probes);
    set_int_option(fd.get(), IPPROTO_TCP, TCP_USER_TIMEOUT, static_cast<int>(k_user_timeout_ms));
    return fd;
}

// A TCP connection to TARGET: each address its host name gives, in turn, sharing what is left of the time.
common::UniqueFd connect_tcp(const TlsTarget& target, Clock::time_point deadline) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(target.host.c_str(), target.port.c_str(), &hints, &found); rc != 0) {
        throw CliError(exit_code::no_daemon,
                       "no daemon at " + target.address + ": cannot resolve " + target.host + ": " +
                           (rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc)));
    }
    std::vector<const addrinfo*> addrs;
    for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
        addrs.push_back(a);
    }
    std::string why;
    common::UniqueFd fd;
    for (size_t i = 0; i < addrs.size() && !fd; ++i) {
        auto left = deadline - Clock::now();
        auto share = left / static_cast<long>(addrs.size() - i);
        auto got = connect_one(*addrs[i], Clock::now() + share);
        if (got) {
            fd = std::move(*got);
        } else {
            why = got.error().err == ETIMEDOUT ? "no answer within " + seconds_text(share)
                                               : std::string(std::strerror(got.error().err));
        }
    }
    ::freeaddrinfo(found);
    if (!fd) {
        throw CliError(exit_code::no_daemon, "no daemon at " + target.address + ": " + why);
    }
    return fd;
}

bool is_ip_address(const std::string& host) {
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string hex(const unsigned char* bytes, size_t n) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (size_t i = 0; i < n; ++i) {
        out += k_digits[bytes[i] >> 4];
        out += k_digits[bytes[i] & 0xF];
    }
    return out;
}

struct SslCtxFree {
    void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const noexcept { SSL_free(s); }
};
struct X509Free {
    void operator()(X509* x) const noexcept { X509_free(x); }
};

class TlsTransport final : public Transport {
  public:
    TlsTransport(common::UniqueFd fd, std::unique_ptr<SSL_CTX, SslCtxFree> ctx,
                 std::unique_ptr<SSL, SslFree> ssl)
        : fd_(std::move(fd)), ctx_(std::move(ctx)), ssl_(std::move(ssl)) {}
    TlsTransport(const TlsTransport&) = delete;
    TlsTransport& operator=(const TlsTransport&) = delete;
    ~TlsTransport() override {
        if (!closed_) {
            // A close_notify, so the daemon sees a client that said goodbye (never waits: non-blocking).
            SigpipeBlocked guard;
            (void)SSL_shutdown(ssl_.get());
        }
    }

    [[nodiscard]] int fd() const noexcept override { return fd_.get(); }

    Read read(std::string& buffer) override {
        if (closed_) {
            return Read::closed;
        }
        static char chunk[k_read_chunk];  // mpctl is single-threaded
        SigpipeBlocked guard;
        bool got = false;
        // Until OpenSSL wants more from the socket: then nothing decrypted is left inside it.
        for (;;) {
            size_t n = 0;
            ERR_clear_error();
            errno = 0;
            int rc = SSL_read_ex(ssl_.get(), chunk, sizeof chunk, &n);
            if (rc == 1) {
                buffer.append(chunk, n);
                got = true;
                continue;
            }
            int err = SSL_get_error(ssl_.get(), rc);
            if (err == SSL_ERROR_WANT_READ) {
                return got ? Read::data : Read::nothing;
            }
            if (err == SSL_ERROR_WANT_WRITE) {
                (void)wait_for(fd_.get(), POLLOUT, std::nullopt);
                continue;
            }
            closed_ = true;
            if (err == SSL_ERROR_SYSCALL && errno != 0) {
                error_ = std::strerror(errno);
            } else if (err == SSL_ERROR_SSL &&
                       ERR_GET_REASON(ERR_peek_error()) != SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                error_ = openssl_errors("TLS error");
            }
            // SSL_ERROR_ZERO_RETURN (close_notify) or an end of file: the daemon closed the connection.
            return got ? Read::data : Read::closed;
        }
    }

    [[nodiscard]] bool readable() const noexcept override { return closed_ || SSL_pending(ssl_.get()) > 0; }

    common::Result<void> write_all(std::string_view data) override {
        SigpipeBlocked guard;
        while (!data.empty()) {
            size_t n = 0;
            ERR_clear_error();
            errno = 0;
            // Retried with the same bytes after a want: what OpenSSL asks of a non-blocking write.
            int rc = SSL_write_ex(ssl_.get(), data.data(), data.size(), &n);
            if (rc == 1) {
                data.remove_prefix(n);
                continue;
            }
            int err = SSL_get_error(ssl_.get(), rc);
            if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
                (void)wait_for(fd_.get(), err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, std::nullopt);
                continue;
            }
            if (err == SSL_ERROR_SYSCALL && errno != 0) {
                return common::sys_error("send");
            }
            return common::plain_error("send: " + openssl_errors("the connection is closed"));
        }
        return {};
    }

    [[nodiscard]] std::string error() const override { return error_; }

  private:
    common::UniqueFd fd_;
    std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
    std::unique_ptr<SSL, SslFree> ssl_;
    bool closed_ = false;
    std::string error_;
};

}  // namespace

void hand_over_to_tls(char** argv) {
    (void)argv;  // this is the build with TLS
}

std::unique_ptr<Transport> connect_tls(const TlsTarget& target, Clock::time_point deadline) {
    auto started = Clock::now();
    common::UniqueFd fd = connect_tcp(target, deadline);

    std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) {
        throw CliError(exit_code::failure, "TLS: " + openssl_errors("cannot make a TLS context"));
    }
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
    // No certificate authority: the certificate is pinned (checked below, once the handshake proved that
    // the daemon holds its key).
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
    if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1) {
        throw CliError(exit_code::failure, "TLS: " + openssl_errors("cannot make a TLS session"));
    }
    if (!is_ip_address(target.host)) {
        SSL_set_tlsext_host_name(ssl.get(), target.host.c_str());
    }
    {
        SigpipeBlocked guard;
        for (;;) {
            ERR_clear_error();
            errno = 0;
            int rc = SSL_connect(ssl.get());
            if (rc == 1) {
                break;
            }
            int err = SSL_get_error(ssl.get(), rc);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                if (!wait_for(fd.get(), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
                    throw CliError(exit_code::no_daemon,
                                   "no daemon at " + target.address + ": no TLS answer within " +
                                       seconds_text(Clock::now() - started) + " (is it `mpctld --listen`?)");
                }
                continue;
            }
            std::string why = err == SSL_ERROR_SYSCALL
                                  ? (errno != 0 ? std::string(std::strerror(errno))
                                                : openssl_errors("the connection was closed"))
                                  : openssl_errors("TLS error");
            throw CliError(exit_code::no_daemon,
                           "no daemon at " + target.address + ": the TLS 1.3 handshake failed: " + why);
        }
    }

    std::unique_ptr<X509, X509Free> cert(SSL_get1_peer_certificate(ssl.get()));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (!cert || X509_digest(cert.get(), EVP_sha256(), md, &md_len) != 1) {
        throw CliError(exit_code::refused, "the daemon at " + target.address + " showed no certificate");
    }
    std::string shown = hex(md, md_len);
    if (shown != target.fingerprint) {
        // Nothing was sent: close without a word (not even a close_notify).
        throw CliError(exit_code::refused, "the daemon at " + target.address +
                                               " is not the one pinned: its certificate is SHA256:" + shown +
                                               ", not SHA256:" + target.fingerprint +
                                               " (--fingerprint); nothing was sent");
    }
    return std::make_unique<TlsTransport>(std::move(fd), std::move(ctx), std::move(ssl));
}

}  // namespace mpctl::cli
