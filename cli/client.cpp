#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/client.hpp>
#include <mpctl/cli/tls_transport.hpp>
#include <mpctl/common/paths.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/jsonrpc.hpp>

extern char** environ;

namespace mpctl::cli {

using nlohmann::json;

namespace {

constexpr size_t k_max_reply_line = 512 * 1024 * 1024;
constexpr size_t k_read_chunk = 64 * 1024;
// A remote daemon has this long to accept the connection, shake hands and answer session.auth: as long as
// mpctl waits for a local daemon it has started to answer (the daemon itself drops a connection that sends
// no request within 10 s of its handshake).
constexpr auto k_remote_connect_time = std::chrono::seconds(15);

// The Unix socket: one recv per read, never waiting (callers poll first).
class PlainTransport final : public Transport {
  public:
    explicit PlainTransport(common::UniqueFd fd) : fd_(std::move(fd)) {}

    [[nodiscard]] int fd() const noexcept override { return fd_.get(); }

    Read read(std::string& buffer) override {
        static char chunk[k_read_chunk];  // mpctl is single-threaded
        ssize_t n = 0;
        do {
            n = ::recv(fd_.get(), chunk, sizeof chunk, MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n > 0) {
            buffer.append(chunk, static_cast<size_t>(n));
            return Read::data;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return Read::nothing;
        }
        error_ = n < 0 ? std::strerror(errno) : "";
        return Read::closed;
    }

    [[nodiscard]] bool readable() const noexcept override { return false; }

    common::Result<void> write_all(std::string_view data) override {
        return common::send_all(fd_.get(), data);
    }

    [[nodiscard]] std::string error() const override { return error_; }

  private:
    common::UniqueFd fd_;
    std::string error_;
};

// A socket connected to PATH. Nobody serving there fails with err ENOENT or ECONNREFUSED.
common::Result<common::UniqueFd> connect_unix(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) {
        return common::sys_error("no daemon at " + path, ENAMETOOLONG);
    }
    common::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return common::sys_error("no daemon at " + path);
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    while (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (errno != EINTR) {
            return common::sys_error("no daemon at " + path);
        }
    }
    return fd;
}

bool autostart_disabled(const GlobalOptions& o) {
    const char* env = std::getenv("MPCTL_NO_AUTOSTART");
    return o.no_autostart || (env != nullptr && env[0] != '\0' && std::string(env) != "0");
}

std::string daemon_executable() {
    // Prefer the mpctld installed beside this mpctl, so a build tree or a prefix is self-contained.
    std::string dir = common::executable_dir();
    if (!dir.empty()) {
        std::string candidate = dir + "/mpctld";
        if (::access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
    }
    return "mpctld";
}

// Starts a daemonizing mpctld and waits for its verdict: 0 serving, 3 someone else is, else an error
// (with what it printed).
int start_daemon(const GlobalOptions& o, const std::string& socket_path, std::string& output) {
    std::string exe = daemon_executable();
    std::vector<std::string> args{exe, "--socket", socket_path};
    if (!o.state_dir.empty()) {
        args.push_back("--state-dir");
        args.push_back(common::absolute_path(o.state_dir));
    }
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        output = std::string("pipe: ") + std::strerror(errno);
        return -1;
    }
    common::UniqueFd read_end(fds[0]);
    common::UniqueFd write_end(fds[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t empty;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, exe.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    write_end.reset();
    if (rc != 0) {
        output = "cannot run " + exe + ": " + std::strerror(rc);
        return -1;
    }
    if (auto said = common::read_to_end(read_end.get())) {
        output += *said;
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    while (!output.empty() && output.back() == '\n') {
        output.pop_back();
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

std::unique_ptr<Transport> plain_transport(common::UniqueFd fd) {
    return std::make_unique<PlainTransport>(std::move(fd));
}

Client::Client(std::unique_ptr<Transport> transport, std::string socket_path, bool remote)
    : transport_(std::move(transport)), socket_path_(std::move(socket_path)), remote_(remote) {}

std::optional<Client> Client::try_connect(const GlobalOptions& options) {
    if (is_remote(options)) {
        try {
            return connect_remote(options);
        } catch (const CliError& e) {
            if (e.code() == exit_code::no_daemon) {
                return std::nullopt;
            }
            throw;
        }
    }
    std::string path = common::resolve_socket_path(options.socket);
    auto fd = connect_unix(path);
    if (!fd) {
        return std::nullopt;
    }
    return Client(plain_transport(std::move(*fd)), path, false);
}

Client Client::connect(const GlobalOptions& options) {
    if (is_remote(options)) {
        return connect_remote(options);  // never autostarted: the daemon is on another machine
    }
    std::string path = common::resolve_socket_path(options.socket);
    auto fd = connect_unix(path);
    if (fd) {
        return Client(plain_transport(std::move(*fd)), path, false);
    }
    bool nobody_home = fd.error().err == ENOENT || fd.error().err == ECONNREFUSED;
    if (!nobody_home || autostart_disabled(options)) {
        std::string hint = nobody_home ? " (autostart is off: run `mpctl daemon start`)" : "";
        throw CliError(exit_code::no_daemon, fd.error().message() + hint);
    }
    std::string output;
    int rc = start_daemon(options, path, output);
    if (rc != 0 && rc != 3) {
        throw CliError(exit_code::no_daemon, "no daemon at " + path + " and none could be started" +
                                                 (output.empty() ? "" : ": " + output));
    }
    // Ready (rc 0), or another mpctld is starting on the same state dir (rc 3): retry with backoff.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    auto delay = std::chrono::milliseconds(2);
    for (;;) {
        fd = connect_unix(path);
        if (fd) {
            return Client(plain_transport(std::move(*fd)), path, false);
        }
        if (std::chrono::steady_clock::now() > deadline) {
            throw CliError(exit_code::no_daemon, "started mpctld, but nothing answers at " + path + ": " +
                                                     std::strerror(fd.error().err) +
                                                     (output.empty() ? "" : " (" + output + ")"));
        }
        std::this_thread::sleep_for(delay);
        delay = std::min(delay * 2, std::chrono::milliseconds(250));
    }
}

namespace {

const char* env_or_null(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && v[0] != '\0' ? v : nullptr;
}

struct RemoteSettings {
    TlsTarget target;
    std::string token;
};

// tcp://HOST:PORT (HOST: a name, an IPv4 address, or an IPv6 one in brackets) as a target; SOURCE names
// where it came from, for the message.
TlsTarget parse_connect_address(const std::string& address, const std::string& source) {
    auto bad = [&](const std::string& why) {
        return CliError(exit_code::usage, source + ": " + why + ": '" + address +
                                              "' (expected tcp://HOST:PORT; an IPv6 address in brackets: "
                                              "tcp://[::1]:PORT)");
    };
    constexpr std::string_view k_scheme = "tcp://";
    if (!address.starts_with(k_scheme)) {
        throw bad("not a tcp:// address");
    }
    std::string_view rest = std::string_view(address).substr(k_scheme.size());
    TlsTarget t;
    t.address = address;
    std::string_view port;
    if (rest.starts_with("[")) {
        size_t close = rest.find(']');
        if (close == std::string_view::npos || rest.substr(close + 1, 1) != ":") {
            throw bad("an IPv6 address is written [ADDRESS]:PORT");
        }
        t.host = std::string(rest.substr(1, close - 1));
        port = rest.substr(close + 2);
    } else {
        size_t colon = rest.rfind(':');
        if (colon == std::string_view::npos) {
            throw bad("no port");
        }
        t.host = std::string(rest.substr(0, colon));
        port = rest.substr(colon + 1);
        if (t.host.find(':') != std::string::npos) {
            throw bad("an IPv6 address goes in brackets");
        }
    }
    if (t.host.empty() || t.host.find_first_of("/[] ") != std::string::npos) {
        throw bad("no host");
    }
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535) {
        throw bad("the port must be from 1 to 65535");
    }
    t.port = std::string(port);
    return t;
}

// The first line of FILE, without its line end and trailing blanks.
std::string token_from_file(const std::string& file) {
    auto text = common::read_file(file);
    if (!text) {
        throw CliError(exit_code::usage, "--token-file: " + text.error().message());
    }
    std::string line = text->substr(0, text->find('\n'));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
        line.pop_back();
    }
    return line;
}

// What connecting to a remote daemon takes, from O and the environment (the flags win); every one checked
// before anything goes on the network. Throws CliError(2) for one missing or malformed.
RemoteSettings remote_settings(const GlobalOptions& o) {
    bool from_flag = !o.connect.empty();
    if (from_flag && !o.socket.empty()) {
        throw CliError(exit_code::usage, "--socket and --connect: one or the other");
    }
    RemoteSettings r;
    r.target = parse_connect_address(from_flag ? o.connect : std::string(env_or_null("MPCTL_CONNECT")),
                                     from_flag ? "--connect" : "MPCTL_CONNECT");
    const std::string& where = r.target.address;
    std::string fingerprint = o.fingerprint;
    const char* fp_source = "--fingerprint";
    if (fingerprint.empty() && env_or_null("MPCTL_FINGERPRINT") != nullptr) {
        fingerprint = env_or_null("MPCTL_FINGERPRINT");
        fp_source = "MPCTL_FINGERPRINT";
    }
    if (fingerprint.empty()) {
        throw CliError(
            exit_code::usage,
            "connecting to " + where +
                " needs the daemon's certificate fingerprint (--fingerprint SHA256:..., or "
                "MPCTL_FINGERPRINT): `mpctld --print-fingerprint` on the daemon's machine prints it");
    }
    auto pinned = normalize_fingerprint(fingerprint);
    if (!pinned) {
        throw CliError(exit_code::usage, std::string(fp_source) + ": not a SHA-256 fingerprint: '" +
                                             fingerprint +
                                             "' (SHA256: and 64 hex digits, as `mpctld --print-fingerprint` "
                                             "prints it)");
    }
    r.target.fingerprint = *pinned;
    if (!o.token_file.empty()) {
        r.token = token_from_file(o.token_file);
        if (r.token.empty()) {
            throw CliError(exit_code::usage, "--token-file " + o.token_file + ": its first line is empty");
        }
    } else if (const char* t = env_or_null("MPCTL_TOKEN")) {
        r.token = t;
    }
    if (r.token.empty()) {
        throw CliError(exit_code::usage,
                       "connecting to " + where +
                           " needs a token (MPCTL_TOKEN, or --token-file FILE): `mpctl token "
                           "create NAME` on the daemon's machine makes one");
    }
    return r;
}

}  // namespace

std::optional<std::string> normalize_fingerprint(std::string_view text) {
    if (text.size() >= 7 && (text.substr(0, 7) == "SHA256:" || text.substr(0, 7) == "sha256:")) {
        text.remove_prefix(7);
    }
    std::string out;
    for (char c : text) {
        if (c == ':') {
            continue;
        }
        if (c >= 'A' && c <= 'F') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return std::nullopt;
        }
        out += c;
    }
    if (out.size() != 64) {
        return std::nullopt;
    }
    return out;
}

bool is_remote(const GlobalOptions& o) {
    return !o.connect.empty() || (o.socket.empty() && env_or_null("MPCTL_CONNECT") != nullptr);
}

Client Client::connect_remote(const GlobalOptions& options) {
    RemoteSettings r = remote_settings(options);
    auto deadline = std::chrono::steady_clock::now() + k_remote_connect_time;
    Client client(connect_tls(r.target, deadline), r.target.address, true);
    client.authenticate(r.token, deadline);
    return client;
}

void Client::authenticate(const std::string& token, std::chrono::steady_clock::time_point deadline) {
    deadline_ = deadline;
    try {
        (void)call("session.auth", {{"token", token}});
    } catch (const CliError& e) {
        if (e.error().is_object()) {
            throw CliError(exit_code::refused,
                           "the daemon at " + socket_path_ + " refused the token: " + e.what(), e.error());
        }
        if (e.code() == exit_code::failure) {
            // Closed without a word: so the daemon treats an address that failed too often lately.
            throw CliError(
                exit_code::refused,
                "the daemon at " + socket_path_ +
                    " closed the connection before it answered session.auth (an address that failed "
                    "to authenticate 5 times within a minute is turned away for a minute)");
        }
        throw;
    }
    deadline_.reset();
}

void Client::pass_fd_with_next_request(int fd) {
    if (remote_) {
        throw CliError(exit_code::refused,
                       "a remote daemon cannot take this process's stdin (--stdin -): descriptors pass only "
                       "over the Unix socket; give --stdin FILE, a file on the daemon's machine");
    }
    fd_to_pass_ = fd;
}

void Client::set_interrupt(int fd, std::function<void()> on_interrupt) {
    interrupt_fd_ = fd;
    on_interrupt_ = std::move(on_interrupt);
}

int64_t Client::send(std::string_view method, const json& params) {
    return send_text(method, proto::dump_json(params));
}

int64_t Client::send_text(std::string_view method, std::string_view params_text) {
    int64_t id = next_id_++;
    std::string line = R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"method":)";
    proto::append_json_string(line, method);
    line += R"(,"params":)";
    line += params_text;
    line += "}\n";
    size_t sent = 0;
    if (fd_to_pass_ >= 0) {
        // The descriptor rides on the request's first bytes, so the daemon holds it before it reads the
        // request to the end.
        iovec iov{line.data(), line.size()};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd_to_pass_, sizeof(int));
        ssize_t n = 0;
        do {
            n = ::sendmsg(transport_->fd(), &msg, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            int err = errno;
            if (auto refusal = refusal_waiting()) {
                throw error_from_daemon(*refusal);
            }
            throw CliError(exit_code::failure,
                           std::string("could not pass a descriptor to the daemon: ") + std::strerror(err));
        }
        fd_to_pass_ = -1;
        sent = static_cast<size_t>(n);
    }
    if (auto r = transport_->write_all(std::string_view(line).substr(sent)); !r) {
        // A daemon that turns a client away (busy, another user) answers and closes before it reads the
        // request: that answer says more than the broken pipe does.
        if (auto refusal = refusal_waiting()) {
            throw error_from_daemon(*refusal);
        }
        throw ConnectionLost(exit_code::failure, "lost the connection to the daemon: " + r.error().message());
    }
    return id;
}

std::optional<json> Client::refusal_waiting() {
    // The answer, if any, is there already: the daemon wrote it before it closed.
    while (transport_->read(buffer_) == Transport::Read::data) {
    }
    size_t nl = buffer_.find('\n', consumed_);
    if (nl == std::string::npos) {
        return std::nullopt;
    }
    json msg = proto::parse_json_text(std::string_view(buffer_.data() + consumed_, nl - consumed_));
    if (!msg.is_object() || !msg.contains("error") || !msg.value("id", json()).is_null()) {
        return std::nullopt;
    }
    return msg["error"];
}

bool Client::read_some() {
    for (;;) {
        bool ready = transport_->readable();
        if (!ready) {
            int timeout_ms = -1;
            if (deadline_) {
                auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline_ -
                                                                         std::chrono::steady_clock::now());
                if (left.count() <= 0) {
                    throw CliError(exit_code::no_daemon,
                                   "no daemon at " + socket_path_ + ": no answer to session.auth within " +
                                       std::to_string(k_remote_connect_time.count()) + " s");
                }
                timeout_ms = static_cast<int>(left.count());
            }
            pollfd fds[2] = {{transport_->fd(), POLLIN, 0}, {interrupt_fd_, POLLIN, 0}};
            int n = ::poll(fds, interrupt_fd_ >= 0 ? 2 : 1, timeout_ms);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;  // the signal handler wrote to the self-pipe; poll again to see it
                }
                return false;
            }
            if (interrupt_fd_ >= 0 && (fds[1].revents & POLLIN) != 0) {
                if (on_interrupt_) {
                    on_interrupt_();  // which reads the pipe
                } else {
                    char drain[64];
                    (void)!::read(interrupt_fd_, drain, sizeof drain);
                }
            }
            ready = (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
        }
        if (ready) {
            size_t before = buffer_.size();
            switch (transport_->read(buffer_)) {
                case Transport::Read::data:
                    bytes_read_ += buffer_.size() - before;
                    return true;
                case Transport::Read::closed:
                    return false;
                case Transport::Read::nothing:
                    break;  // a part of a TLS record: wait for the rest
            }
        }
    }
}

bool Client::read_available() {
    size_t before = buffer_.size();
    bool open = transport_->read(buffer_) != Transport::Read::closed;
    bytes_read_ += buffer_.size() - before;
    return open;
}

void Client::replace_connection(Client&& fresh) {
    transport_ = std::move(fresh.transport_);
    socket_path_ = std::move(fresh.socket_path_);
    remote_ = fresh.remote_;
    deadline_.reset();
    buffer_.clear();
    consumed_ = 0;
    fd_to_pass_ = -1;
}

bool Client::buffered() const {
    return transport_->readable() || buffer_.find('\n', consumed_) != std::string::npos;
}

std::optional<json> Client::next_message() {
    size_t nl = buffer_.find('\n', consumed_);
    if (nl == std::string::npos) {
        buffer_.erase(0, consumed_);
        consumed_ = 0;
        if (buffer_.size() > k_max_reply_line) {
            throw CliError(exit_code::refused, "the daemon sent an oversized message");
        }
        return std::nullopt;
    }
    std::string_view line(buffer_.data() + consumed_, nl - consumed_);
    consumed_ = nl + 1;
    json msg = proto::parse_json_text(line);
    if (msg.is_discarded() || !msg.is_object()) {
        throw CliError(exit_code::refused, "the daemon sent something that is not JSON-RPC");
    }
    return msg;
}

json Client::call(std::string_view method, const json& params, const OnNotification& on_notify) {
    return call_text(method, proto::dump_json(params), on_notify);
}

json Client::call_text(std::string_view method, std::string_view params_text,
                       const OnNotification& on_notify) {
    int64_t id = send_text(method, params_text);
    buffer_.erase(0, consumed_);
    consumed_ = 0;
    size_t start = 0;
    for (;;) {
        size_t nl = 0;
        while ((nl = buffer_.find('\n', start)) != std::string::npos) {
            std::string_view line(buffer_.data() + start, nl - start);
            start = nl + 1;
            json msg = proto::parse_json_text(line);
            if (msg.is_discarded() || !msg.is_object()) {
                throw CliError(exit_code::refused, "the daemon sent something that is not JSON-RPC");
            }
            auto mid = msg.find("id");
            if (mid == msg.end()) {
                if (on_notify && msg.contains("method")) {
                    on_notify(msg["method"].get<std::string>(), msg.value("params", json::object()));
                }
                continue;
            }
            bool ours = mid->is_number_integer() && mid->get<int64_t>() == id;
            if (!ours && !(mid->is_null() && msg.contains("error"))) {
                continue;  // the answer to a request sent with send()
            }
            buffer_.erase(0, start);
            if (auto err = msg.find("error"); err != msg.end()) {
                throw error_from_daemon(*err);
            }
            return msg.value("result", json(nullptr));
        }
        if (start > 0 && start >= buffer_.size() / 2) {
            buffer_.erase(0, start);
            start = 0;
        }
        if (buffer_.size() - start > k_max_reply_line) {
            throw CliError(exit_code::refused, "the daemon sent an oversized message");
        }
        if (!read_some()) {
            std::string why = transport_->error();
            throw ConnectionLost(exit_code::failure, "the daemon closed the connection (did it stop?)" +
                                                         (why.empty() ? "" : ": " + why));
        }
    }
}

CliError error_from_daemon(const json& error) {
    int code = error.is_object() ? error.value("code", -32603) : -32603;
    std::string message =
        error.is_object() ? error.value("message", std::string("unknown error")) : "unknown error";
    int exit = exit_code::failure;
    switch (proto::error_code_from_int(code)) {
        case proto::ErrorCode::unknown_id:
            exit = exit_code::unknown_id;
            break;
        case proto::ErrorCode::busy:
            exit = exit_code::busy;
            break;
        case proto::ErrorCode::timeout:
            exit = exit_code::timeout;
            break;
        case proto::ErrorCode::refused:
        case proto::ErrorCode::parse_error:
        case proto::ErrorCode::invalid_request:
        case proto::ErrorCode::method_not_found:
        case proto::ErrorCode::invalid_params:
            exit = exit_code::refused;
            break;
        default:
            break;
    }
    return CliError(exit, message, error);
}

}  // namespace mpctl::cli
