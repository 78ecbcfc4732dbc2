#pragma once
// The seam between the scheduler and real processes (ninja's CommandRunner idea): the daemon uses
// ProcessSpawner; unit tests drive the scheduler with a fake that "exits" processes on command.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

// A complete environment ready for exec: the "K=V" strings and the null-terminated array over them.
// Immutable, so many tasks share one (everything submitted from one shell has the same environment) and
// nothing is rebuilt per spawn.
class EnvBlock {
  public:
    explicit EnvBlock(std::vector<std::string> entries);
    EnvBlock(const EnvBlock&) = delete;
    EnvBlock& operator=(const EnvBlock&) = delete;

    [[nodiscard]] const std::vector<std::string>& entries() const noexcept { return entries_; }
    [[nodiscard]] char* const* envp() const noexcept { return envp_.data(); }
    // PATH's value, or what execvp uses when PATH is unset.
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

  private:
    std::vector<std::string> entries_;
    std::vector<char*> envp_;
    std::string path_;
};

// Everything needed to start one process. Paths are absolute.
struct SpawnSpec {
    std::vector<std::string> argv;  // argv[0] is looked up in env's PATH unless it contains '/'
    std::string cwd;
    std::shared_ptr<const EnvBlock> env;    // the complete environment
    std::optional<std::string> stdin_path;  // nullopt: /dev/null
    std::string stdout_path;                // opened (created or truncated) unless stdout_fd is given
    std::string stderr_path;
    common::UniqueFd stdout_fd;  // given to the child as its fd 1 and 2, then closed here
    common::UniqueFd stderr_fd;
};

// How a process ended: exactly one of exit_code and signal is set.
struct ExitInfo {
    std::optional<int> exit_code;
    std::optional<int> signal;
};

// Why a spawn failed; exit_code is what a shell would report (127 not found, 126 otherwise).
struct SpawnError {
    int exit_code = 126;
    std::string message;
};

class Spawner {
  public:
    using OnExit = std::function<void(ExitInfo)>;
    virtual ~Spawner() = default;

    // Starts SPEC in its own process group. On success returns the pid (== its pgid); ON_EXIT then runs
    // exactly once on the daemon's loop after the process has been reaped.
    [[nodiscard]] virtual std::expected<int, SpawnError> spawn(SpawnSpec spec, OnExit on_exit) = 0;

    // Sends SIGNO to the process group PGID. Quietly ignores a group that is already gone.
    virtual void signal_group(int pgid, int signo) = 0;

    // Whether any process is left in group PGID (after its leader exited, background children may remain).
    [[nodiscard]] virtual bool group_alive(int pgid) = 0;
};

}  // namespace mpctl::daemon
