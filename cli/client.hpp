#pragma once
// Client: one connection to mpctld, blocking, with plain syscalls (no Asio: mpctl must start fast).
// Connecting starts a per-user daemon when nobody answers (unless autostart is off) and waits for it with
// backoff. call() sends one request and returns its result, handing notifications that arrive meanwhile to
// a callback; daemon errors become CliError with the exit codes of README.md.
//
// With a connect address (--connect tcp://HOST:PORT or $MPCTL_CONNECT) the daemon is a remote one: TLS 1.3
// over TCP, its certificate pinned (--fingerprint), a token sent first (session.auth), never autostarted
// (PROTOCOL.md "Remote clients"). The bytes go through a Transport (transport.hpp); the rest of mpctl sees
// the same Client either way.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/transport.hpp>
#include <mpctl/common/unique_fd.hpp>
#include <mpctl/proto/framing.hpp>

namespace mpctl::cli {

struct GlobalOptions {
    std::string socket;     // --socket (empty: the default)
    std::string state_dir;  // --state-dir, passed to an autostarted daemon
    bool json = false;
    bool no_autostart = false;
    std::string connect;      // --connect tcp://HOST:PORT (else $MPCTL_CONNECT): a remote daemon
    std::string fingerprint;  // --fingerprint (else $MPCTL_FINGERPRINT): its certificate's, pinned
    std::string token_file;   // --token-file FILE: the token is its first line (else $MPCTL_TOKEN)
};

// Whether O (or the environment) names a remote daemon; says nothing of whether the settings are right.
[[nodiscard]] bool is_remote(const GlobalOptions& o);

class Client {
  public:
    using OnNotification = std::function<void(const std::string& method, const nlohmann::json& params)>;

    // Connects, starting mpctld if needed and allowed (a local one only). Throws CliError(3) if no daemon
    // can be reached; for a remote one also 2 (a setting missing or malformed) and 6 (not the pinned
    // certificate, a token refused).
    static Client connect(const GlobalOptions& options);
    // Connects without autostart; nullopt if nobody answers.
    static std::optional<Client> try_connect(const GlobalOptions& options);

    // Sends METHOD and waits for its answer. Notifications (streams) go to ON_NOTIFY; an interrupt
    // (see set_interrupt_fd) calls ON_INTERRUPT, which may send further requests. A connection that ends
    // before the answer throws ConnectionLost (cli_error.hpp).
    nlohmann::json call(std::string_view method, const nlohmann::json& params,
                        const OnNotification& on_notify = {});
    // The same with params already encoded as a JSON object's text.
    nlohmann::json call_text(std::string_view method, std::string_view params_text,
                             const OnNotification& on_notify = {});

    // Sends a request without waiting; its answer is skipped by call(). Returns its id.
    int64_t send(std::string_view method, const nlohmann::json& params);

    // Passes FD (SCM_RIGHTS) along with the next request, for a spec with "stdin_fd": true. The caller
    // keeps its own copy open until that request is sent. A remote daemon cannot take one: CliError(6).
    void pass_fd_with_next_request(int fd);

    // Sends a request whose params are already a JSON object's text, without waiting. Returns its id.
    int64_t send_params_text(std::string_view method, std::string_view params_text) {
        return send_text(method, params_text);
    }

    // For event loops that wait on more than this connection (mpctl map): poll fd() (without waiting when
    // buffered() says messages are there already), call read_available() once it is readable or buffered()
    // (false: the daemon closed the connection), then take next_message() until it gives nullopt. Every
    // message comes out, answers and notifications alike; call() may be used again only once
    // next_message() has given nullopt. read_available() never waits.
    [[nodiscard]] int fd() const noexcept { return transport_->fd(); }
    [[nodiscard]] bool read_available();
    [[nodiscard]] std::optional<nlohmann::json> next_message();
    // True when a message can be had without poll() saying fd() is readable: a whole one read already, or
    // bytes kept inside the transport (TLS).
    [[nodiscard]] bool buffered() const;

    // While call() waits, readability of FD (a self-pipe written by a signal handler) runs ON_INTERRUPT,
    // which must read what is in the pipe.
    void set_interrupt(int fd, std::function<void()> on_interrupt);

    // The socket's path, or a remote daemon's address (tcp://HOST:PORT).
    [[nodiscard]] const std::string& socket_path() const noexcept { return socket_path_; }
    [[nodiscard]] bool remote() const noexcept { return remote_; }

    // Bytes read from the daemon so far, over every connection this Client has had.
    [[nodiscard]] uint64_t bytes_read() const noexcept { return bytes_read_; }
    // Takes FRESH's connection in place of this one (lost: reconnect.hpp), dropping what was read of an
    // unfinished message; the interrupt set stays.
    void replace_connection(Client&& fresh);

  private:
    Client(std::unique_ptr<Transport> transport, std::string socket_path, bool remote);
    static Client connect_remote(const GlobalOptions& options);
    // Sends session.auth with TOKEN, before the deadline; throws CliError(6) if it is refused.
    void authenticate(const std::string& token, std::chrono::steady_clock::time_point deadline);
    [[nodiscard]] bool read_some();
    int64_t send_text(std::string_view method, std::string_view params_text);
    // The daemon's answer to a connection it turned away, when one is waiting to be read.
    [[nodiscard]] std::optional<nlohmann::json> refusal_waiting();

    std::unique_ptr<Transport> transport_;
    std::string socket_path_;
    bool remote_ = false;
    // While set (the remote handshake and session.auth), a wait for the daemon ends here.
    std::optional<std::chrono::steady_clock::time_point> deadline_;
    int64_t next_id_ = 1;
    std::string buffer_;
    size_t consumed_ = 0;  // of buffer_, by next_message()
    uint64_t bytes_read_ = 0;
    int interrupt_fd_ = -1;
    int fd_to_pass_ = -1;
    std::function<void()> on_interrupt_;
};

// Maps a JSON-RPC error object from the daemon to the CliError that mpctl exits with.
[[nodiscard]] CliError error_from_daemon(const nlohmann::json& error);

}  // namespace mpctl::cli
