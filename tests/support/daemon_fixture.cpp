#include "daemon_fixture.hpp"

#include <cstring>
#include <fstream>
#include <poll.h>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace mpctl::test {

using nlohmann::json;

std::string mpctl_bin() {
    return MPCTL_TEST_BIN_DIR "/mpctl";
}
std::string mpctld_bin() {
    return MPCTL_TEST_BIN_DIR "/mpctld";
}

namespace {

// True once the daemon with pid PID (or, with --supervise, supervised by PID) answers on PATH. A connect
// alone proves little: right after a kill -9 the old daemon's socket can live on for a moment in a child it
// was spawning.
bool daemon_answers(const std::string& path, pid_t pid) {
    try {
        RpcConnection c(path);
        c.send_raw(R"({"jsonrpc":"2.0","id":1,"method":"daemon.status"})"
                   "\n");
        auto line = c.read_line(std::chrono::milliseconds(500));
        if (!line) {
            return false;
        }
        json reply = json::parse(*line, nullptr, false);
        if (!reply.is_object() || !reply.contains("result")) {
            return false;
        }
        const json& result = reply["result"];
        const json supervisor = result.value("supervisor", json());
        return result.value("pid", 0) == pid || (supervisor.is_object() && supervisor.value("pid", 0) == pid);
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace

RpcConnection::RpcConnection(const std::string& socket_path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd_);
        throw std::runtime_error("connect " + socket_path + ": " + std::strerror(errno));
    }
}

RpcConnection::~RpcConnection() {
    ::close(fd_);
}

namespace {

// 0, or the errno that stopped the send.
int send_all(int fd, const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        done += static_cast<size_t>(n);
    }
    return 0;
}

}  // namespace

bool RpcConnection::try_send_raw(const std::string& bytes) {
    int err = send_all(fd_, bytes);
    if (err != 0 && err != EPIPE && err != ECONNRESET) {
        throw std::runtime_error(std::string("send: ") + std::strerror(err));
    }
    return err == 0;
}

void RpcConnection::send_raw(const std::string& bytes) {
    if (int err = send_all(fd_, bytes); err != 0) {
        throw std::runtime_error(std::string("send: ") + std::strerror(err));
    }
}

void RpcConnection::shutdown_write() {
    ::shutdown(fd_, SHUT_WR);
}

std::optional<std::string> RpcConnection::read_line(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto nl = buffer_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            why_no_line_ = "timed out";
            return std::nullopt;
        }
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            continue;
        }
        char buf[65536];
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            why_no_line_ = n == 0 ? "end of stream" : std::string("read: ") + std::strerror(errno);
            return std::nullopt;
        }
        buffer_.append(buf, static_cast<size_t>(n));
    }
}

std::string RpcConnection::why_no_line() const {
    return buffer_.empty() ? why_no_line_
                           : why_no_line_ + " after " + std::to_string(buffer_.size()) +
                                 " bytes of a line: " + buffer_.substr(0, 200);
}

json RpcConnection::call(const std::string& method, const json& params, std::vector<json>* notifications,
                         std::chrono::milliseconds timeout) {
    int64_t id = next_id_++;
    send_raw(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump() + "\n");
    for (;;) {
        auto line = read_line(timeout);
        if (!line) {
            throw std::runtime_error("no answer to " + method);
        }
        json msg = json::parse(*line);
        if (msg.contains("id") && msg["id"] == id) {
            return msg;
        }
        if (notifications != nullptr && !msg.contains("id")) {
            notifications->push_back(msg);
        }
    }
}

DaemonFixture::DaemonFixture(DaemonOptions options) : options_(std::move(options)) {
    // The tasks of a daemon a test kills with -9 come to the test, not to the machine's init (some reap
    // late, some never): a test that needs one gone before the next start reaps it (reap_orphan), so that
    // what the restarted daemon finds does not depend on where the suite runs.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    socket_ = dir_ / "d.sock";
    state_dir_ = dir_ / "state";
    start();
}

DaemonFixture::~DaemonFixture() {
    if (process_ && process_->running()) {
        process_->signal(SIGTERM);
        if (!process_->wait(std::chrono::seconds(30))) {
            process_->signal(SIGKILL);
            (void)process_->wait(std::chrono::seconds(10));
        }
    }
}

void DaemonFixture::start(const std::vector<std::string>& once) {
    std::vector<std::string> argv{mpctld_bin(),  "--foreground", "--exit-with-parent", "--socket", socket_,
                                  "--state-dir", state_dir_};
    if (options_.workers > 0) {
        argv.push_back("--workers");
        argv.push_back(std::to_string(options_.workers));
    }
    argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
    argv.insert(argv.end(), once.begin(), once.end());
    argv.insert(argv.begin(), options_.launcher.begin(), options_.launcher.end());
    ProcessOptions process = options_.process;
    process.output_file = log_path();
    process_ = std::make_unique<BackgroundProcess>(argv, process, false);
    bool up = eventually([&] { return daemon_answers(socket_, process_->pid()) || !process_->running(); });
    if (!up || !process_->running()) {
        throw std::runtime_error("mpctld did not start on " + socket_ + ":\n" + log());
    }
}

int DaemonFixture::stop() {
    if (!process_) {
        return -1;
    }
    process_->signal(SIGTERM);
    auto r = process_->wait(std::chrono::seconds(60));
    if (!r) {
        process_->signal(SIGKILL);
        r = process_->wait(std::chrono::seconds(10));
    }
    return r ? r->exit_code : -1;
}

void DaemonFixture::kill9() {
    process_->signal(SIGKILL);
    (void)process_->wait(std::chrono::seconds(30));
}

std::string DaemonFixture::log_path() const {
    return dir_ / "mpctld.log";
}

std::string DaemonFixture::log() const {
    std::ifstream in(log_path());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

pid_t DaemonFixture::pid() const {
    return process_ ? process_->pid() : -1;
}

bool DaemonFixture::running() {
    return process_ && process_->running();
}

ProcessOptions DaemonFixture::client_options(ProcessOptions base) const {
    base.env_set.emplace("MPCTL_SOCKET", socket_);
    base.env_set.emplace("MPCTL_STATE_DIR", state_dir_);
    base.env_set.emplace("MPCTL_NO_AUTOSTART", "1");
    base.env_set.emplace("NO_COLOR", "1");
    return base;
}

ProcessResult DaemonFixture::mpctl(const std::vector<std::string>& args, ProcessOptions options) const {
    std::vector<std::string> argv{mpctl_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, client_options(std::move(options)));
}

json DaemonFixture::mpctl_json(const std::vector<std::string>& args, ProcessOptions options) const {
    std::vector<std::string> with_json{"--json"};
    with_json.insert(with_json.end(), args.begin(), args.end());
    auto r = mpctl(with_json, std::move(options));
    INFO("mpctl " << with_json.at(1) << " exit " << r.exit_code << "\nstdout: " << r.out
                  << "\nstderr: " << r.err);
    json j = json::parse(r.out, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    return j;
}

std::vector<json> DaemonFixture::mpctl_ndjson(const std::vector<std::string>& args,
                                              ProcessOptions options) const {
    std::vector<std::string> with_json{"--json"};
    with_json.insert(with_json.end(), args.begin(), args.end());
    auto r = mpctl(with_json, std::move(options));
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    std::vector<json> out;
    size_t start = 0;
    while (start < r.out.size()) {
        auto nl = r.out.find('\n', start);
        std::string line = r.out.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        if (!line.empty()) {
            json j = json::parse(line, nullptr, false);
            REQUIRE_FALSE(j.is_discarded());
            out.push_back(std::move(j));
        }
        if (nl == std::string::npos) {
            break;
        }
        start = nl + 1;
    }
    return out;
}

int64_t DaemonFixture::submit(const std::vector<std::string>& args, ProcessOptions options) const {
    std::vector<std::string> argv{"submit"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = mpctl(argv, std::move(options));
    std::string diag;
    if (r.exit_code != 0) {
        diag = "daemon alive: " + std::to_string(::kill(pid(), 0) == 0) + "\n" +
               run_process({"sh", "-c", "ls -la " + dir_.path() + "; ss -xlpn | grep " + dir_.path()}).out;
    }
    INFO("mpctl submit exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err
                              << "\nmpctld's log:\n"
                              << log() << "\n"
                              << diag);
    REQUIRE(r.exit_code == 0);
    return std::stoll(r.out);
}

json DaemonFixture::status(int64_t id) const {
    return mpctl_json({"status", std::to_string(id)});
}

void DaemonFixture::sync_journal(const std::string& pool, int workers) {
    auto r = mpctl({"pool", "set", pool, "--workers", std::to_string(workers)});
    REQUIRE(r.exit_code == 0);
}

json DaemonFixture::wait_for_state(int64_t id, const std::string& state,
                                   std::chrono::milliseconds timeout) const {
    auto conn = connect();
    auto get = [&] {
        json reply = conn->call("task.get", {{"id", id}});
        INFO("task.get " << id << ": " << reply.dump());
        REQUIRE(reply.contains("result"));
        return reply["result"];
    };
    if (state == "succeeded" || state == "failed" || state == "cancelled") {
        json reply =
            conn->call("task.wait", {{"ids", {id}}, {"timeout", static_cast<double>(timeout.count()) / 1000}},
                       nullptr, timeout + std::chrono::seconds(30));
        INFO("task.wait " << id << ": " << reply.dump());
        REQUIRE(reply.contains("result"));
        return get();
    }
    json last;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        last = get();
        if (last.value("state", "") == state || std::chrono::steady_clock::now() > deadline) {
            return last;
        }
        struct timespec ts {
            0, 10'000'000
        };
        ::nanosleep(&ts, nullptr);
    }
}

std::unique_ptr<RpcConnection> DaemonFixture::connect() const {
    return std::make_unique<RpcConnection>(socket_);
}

}  // namespace mpctl::test
