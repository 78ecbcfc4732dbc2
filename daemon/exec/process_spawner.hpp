#pragma once
// ProcessSpawner: starts processes under the process rules of docs/ARCHITECTURE.md (spawn_linux.hpp says
// how) and watches each
// with its pidfd on the daemon's io_context, reaping exactly its own children. Loop thread only.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/exec/spawn_linux.hpp>
#include <mpctl/daemon/exec/spawner.hpp>

namespace mpctl::daemon {

class ProcessSpawner final : public Spawner {
  public:
    explicit ProcessSpawner(asio::io_context& io);
    ~ProcessSpawner() override;

    [[nodiscard]] common::Result<std::vector<int>> spawn(SpawnSpec spec, OnExit on_exit) override;
    void signal_group(int pgid, int signo) override;
    [[nodiscard]] bool group_alive(int pgid) override;

    // The descriptor limits children start with: the daemon raises its own soft limit (it serves many
    // clients), and a task gets the one it would have had from the daemon's parent (select() breaks
    // above 1024).
    void set_child_open_files_limit(uint64_t soft, uint64_t hard) {
        child_open_files_ =
            ResourceLimit{RLIMIT_NOFILE, static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)};
    }

    // Processes spawned and not yet reaped.
    [[nodiscard]] size_t live_count() const noexcept { return children_.size(); }

  private:
    std::optional<ResourceLimit> child_open_files_;

    struct Child {
        common::UniqueFd pidfd;
        std::function<void(ExitInfo)> on_exit;  // empty for a stage torn down before its pipeline started
    };

    // The pidfds live in an epoll set of their own, which the loop watches as one descriptor: adding a
    // child is one epoll_ctl, and closing its pidfd removes it (asio would register, arm and remove each).
    void wait_for_exits();
    void watch(int pid, common::UniqueFd pidfd, std::function<void(ExitInfo)> on_exit);
    // What a failure of spawn_child means for the task that wanted to run COMMAND in CWD.
    [[nodiscard]] static common::Error spawn_error(const common::Error& child, const std::string& command,
                                                   const std::string& cwd);
    void reap(int pid);
    [[nodiscard]] common::Result<std::string> lookup(const std::string& file, const std::string& path,
                                                     const std::string& cwd);

    asio::io_context& io_;
    common::UniqueFd dev_null_;
    asio::posix::stream_descriptor exits_;  // the epoll set of the children's pidfds
    bool waiting_ = false;
    std::unordered_map<int, Child> children_;
    struct Lookup {
        std::string exe;
        std::chrono::steady_clock::time_point expires;
    };
    std::unordered_map<std::string, Lookup> lookups_;  // recent PATH searches
};

// Looks up FILE as execvp would, in PATH (the task's, not the daemon's), resolving relative PATH entries
// against CWD. Returns the path to execute; a failure's err is ENOENT (code not_found) or EACCES.
[[nodiscard]] common::Result<std::string> find_executable(const std::string& file, const std::string& path,
                                                          const std::string& cwd);

}  // namespace mpctl::daemon
