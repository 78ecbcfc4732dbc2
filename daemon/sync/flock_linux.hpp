#pragma once
// The file side of mpctl's locks, Linux: flock(2), which util-linux flock(1), Python's filelock and
// fcntl.flock use too (flock and fcntl record/OFD locks do not see each other on Linux). Each held lock
// is its own open() (its own open file description, so that two holders in one daemon really conflict),
// close-on-exec (a task that inherited the descriptor would keep the lock alive), never fcntl(F_SETLK)
// (owned by the whole process: any close() of that file anywhere in the daemon would drop it). Lock files
// are created when missing and never truncated or unlinked.

#include <map>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

// Takes the lock on PATH (created, mode 0666 less the umask, if missing) without blocking: the descriptor
// that holds it, or nullopt-like Errc::failed with err EWOULDBLOCK when a conflicting lock is held
// elsewhere. A file replaced while the lock was taken (the path names another inode afterwards) is tried
// again, so the lock held is always the one on the file PATH names.
[[nodiscard]] common::Result<common::UniqueFd> try_flock(const std::string& path, bool shared);

// Whether a try_flock error means "held elsewhere, try later".
[[nodiscard]] inline bool is_busy(const common::Error& e) {
    return e.err == EWOULDBLOCK;
}

// Checks that PATH can be a lock file: absolute, and not a directory. (Whether it can be opened is
// try_flock's to say.)
[[nodiscard]] common::Result<void> check_lock_path(const std::string& path);

// A lock on a file held by some process, from /proc/locks.
struct FileLockHolder {
    pid_t pid = 0;
    std::string kind;  // FLOCK, POSIX or OFDLCK
    bool write = false;
};

// The locks /proc/locks lists, read once (it lists every lock of the machine: a `lock list` of many files
// reads it once, not once per file), without those of process SELF (the daemon's own).
class FileLockHolders {
  public:
    explicit FileLockHolders(pid_t self);
    // Those held on the file PATH names.
    [[nodiscard]] std::vector<FileLockHolder> on(const std::string& path) const;

  private:
    std::multimap<std::pair<dev_t, ino_t>, FileLockHolder> by_file_;
};

}  // namespace mpctl::daemon
