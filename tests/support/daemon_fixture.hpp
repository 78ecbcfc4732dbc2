#pragma once
// DaemonFixture: a real mpctld in a temporary directory (its own socket and state dir), and helpers that
// drive it with the real mpctl binary or with raw JSON-RPC lines. The daemon runs in the foreground with
// --exit-with-parent and is stopped (SIGTERM, then SIGKILL) when the fixture goes away, so no test
// leaves a daemon behind.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "process.hpp"
#include "temp_dir.hpp"

namespace mpctl::test {

// Where the binaries under test are (set by CMake).
std::string mpctl_bin();
std::string mpctld_bin();

// A raw connection to a daemon's socket, for protocol tests.
class RpcConnection {
  public:
    explicit RpcConnection(const std::string& socket_path);
    ~RpcConnection();
    RpcConnection(const RpcConnection&) = delete;
    RpcConnection& operator=(const RpcConnection&) = delete;

    void send_raw(const std::string& bytes);
    // send_raw for a client the daemon may have turned away already: false where the connection was
    // closed under it (its answer is still there to read).
    bool try_send_raw(const std::string& bytes);
    // One line without its '\n'; nullopt at EOF or after TIMEOUT.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(60));
    // Why the last read_line gave nullopt: "end of stream", "timed out", or the read's error; with the
    // bytes of a line begun but not ended, if any.
    [[nodiscard]] std::string why_no_line() const;
    // Sends a request and returns the response with that id (notifications before it are collected),
    // waiting up to TIMEOUT for it.
    nlohmann::json call(const std::string& method, const nlohmann::json& params,
                        std::vector<nlohmann::json>* notifications = nullptr,
                        std::chrono::milliseconds timeout = std::chrono::seconds(60));
    void shutdown_write();

  private:
    int fd_ = -1;
    std::string buffer_;
    std::string why_no_line_;
    int64_t next_id_ = 1000;
};

struct DaemonOptions {
    int workers = 2;  // 0: no --workers flag (the config file or the CPU count decides)
    std::vector<std::string> extra_args;
    ProcessOptions process;  // environment of the daemon
    // A command the daemon's command line is appended to; it must end by exec'ing it (the fixture signals
    // and waits for that pid). Empty: mpctld is started directly.
    std::vector<std::string> launcher;
};

class DaemonFixture {
  public:
    explicit DaemonFixture(DaemonOptions options = {});
    ~DaemonFixture();
    DaemonFixture(const DaemonFixture&) = delete;
    DaemonFixture& operator=(const DaemonFixture&) = delete;

    // Starts the daemon again; ONCE: arguments for this start only (`--recover`).
    void start(const std::vector<std::string>& once = {});
    // SIGTERM and wait for the exit; returns its exit code.
    int stop();
    // SIGKILL: the daemon dies without any chance to clean up.
    void kill9();
    [[nodiscard]] pid_t pid() const;
    // What the daemons of this fixture wrote to stderr (their log), for failure messages.
    [[nodiscard]] std::string log() const;
    [[nodiscard]] std::string log_path() const;
    [[nodiscard]] bool running();

    [[nodiscard]] const TempDir& dir() const { return dir_; }
    [[nodiscard]] const std::string& socket() const { return socket_; }
    [[nodiscard]] const std::string& state_dir() const { return state_dir_; }

    // The environment that points mpctl at this daemon (and turns autostart off).
    [[nodiscard]] ProcessOptions client_options(ProcessOptions base = {}) const;

    // Runs the real mpctl with ARGS against this daemon.
    ProcessResult mpctl(const std::vector<std::string>& args, ProcessOptions options = {}) const;
    // mpctl --json ARGS: the single JSON object it printed (fails the test if it printed none).
    nlohmann::json mpctl_json(const std::vector<std::string>& args, ProcessOptions options = {}) const;
    // mpctl --json ARGS: one object per line.
    std::vector<nlohmann::json> mpctl_ndjson(const std::vector<std::string>& args,
                                             ProcessOptions options = {}) const;

    // mpctl submit ARGS: the new task's id (fails the test unless it exits 0).
    int64_t submit(const std::vector<std::string>& args, ProcessOptions options = {}) const;
    // mpctl status --json ID
    nlohmann::json status(int64_t id) const;
    // Waits (generously) until task ID is in STATE; returns its last status. A final state is waited for
    // with task.wait, an event: the daemon answers when the task ends. There is no such event for a start,
    // so "running" and "pending" are asked for with task.get on one connection every 10 ms.
    // Returns once the journal holds every change made so far: a state change (a start, say) is journaled
    // without anyone waiting for it, within 2 ms and with other writes; a pool.set's answer comes after a
    // commit that holds it: this sets POOL to the WORKERS it has already. For tests that kill -9 the daemon
    // and read the journal back.
    void sync_journal(const std::string& pool, int workers);
    nlohmann::json wait_for_state(int64_t id, const std::string& state,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

    [[nodiscard]] std::unique_ptr<RpcConnection> connect() const;

  private:
    DaemonOptions options_;
    TempDir dir_;
    std::string socket_;
    std::string state_dir_;
    std::unique_ptr<BackgroundProcess> process_;
};

}  // namespace mpctl::test
