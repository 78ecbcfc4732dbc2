#pragma once
// PosixSpawner: starts processes with posix_spawn under DESIGN.md's rules and watches each with a pidfd on
// the daemon's io_context. Loop thread only.

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/exec/spawner.hpp>

namespace mpctl::daemon {

class PosixSpawner final : public Spawner {
  public:
    explicit PosixSpawner(asio::io_context& io);
    ~PosixSpawner() override;

    [[nodiscard]] std::expected<int, SpawnError> spawn(SpawnSpec spec, OnExit on_exit) override;
    void signal_group(int pgid, int signo) override;
    [[nodiscard]] bool group_alive(int pgid) override;

    // Processes spawned and not yet reaped.
    [[nodiscard]] size_t live_count() const noexcept { return children_.size(); }

  private:
    struct Child {
        int pid = 0;
        asio::posix::stream_descriptor pidfd;
        OnExit on_exit;
        explicit Child(asio::io_context& io) : pidfd(io) {}
    };

    void watch(std::shared_ptr<Child> child);
    [[nodiscard]] std::expected<std::string, int> lookup(const std::string& file, const std::string& path,
                                                         const std::string& cwd);
    void reap(const std::shared_ptr<Child>& child);

    asio::io_context& io_;
    common::UniqueFd dev_null_;
    std::unordered_map<int, std::shared_ptr<Child>> children_;
    struct Lookup {
        std::string exe;
        std::chrono::steady_clock::time_point expires;
    };
    std::unordered_map<std::string, Lookup> lookups_;  // recent PATH searches
};

// Looks up FILE as execvp would, in PATH (the task's, not the daemon's), resolving relative PATH entries
// against CWD. Returns the path to execute, or the errno that describes the failure (ENOENT, EACCES).
[[nodiscard]] std::expected<std::string, int> find_executable(const std::string& file,
                                                              const std::string& path,
                                                              const std::string& cwd);

}  // namespace mpctl::daemon
