#pragma once
// Small syscall helpers that every part uses. All return Result and never throw.

#include <cstdint>
#include <signal.h>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::common {

// Writes all of DATA, retrying on EINTR and short writes.
[[nodiscard]] Result<void> write_all(int fd, std::string_view data);

// write_all for a socket whose peer may be gone: that is an EPIPE error, never a SIGPIPE that kills the
// process before it can say what the peer answered.
[[nodiscard]] Result<void> send_all(int fd, std::string_view data);

// One read(2), retried if a signal interrupted it: the bytes read (0 at end of file). A non-blocking FD
// with nothing to read fails with err EAGAIN.
[[nodiscard]] Result<size_t> read_once(int fd, void* buf, size_t size);

// Reads FD until end of file (a pipe until every writer is gone).
[[nodiscard]] Result<std::string> read_to_end(int fd);

// Reads the whole file (for small files: configs, pid files).
[[nodiscard]] Result<std::string> read_file(const std::string& path);

// This process's environment, "K=V" each (environ, copied).
[[nodiscard]] std::vector<std::string> current_environment();

// Opens with O_CLOEXEC always added.
[[nodiscard]] Result<UniqueFd> open_cloexec(const std::string& path, int flags, unsigned mode = 0600);

[[nodiscard]] Result<void> set_cloexec(int fd);

// The fields of /proc/PID/stat from the third (the state) on: those after the command name, whose spaces
// and parentheses would throw a plain split off. Field N of proc(5) is element N - 3.
[[nodiscard]] Result<std::vector<std::string>> process_stat_fields(int pid);

// When process PID started, in clock ticks since boot (/proc/PID/stat's 22nd field): with the pid, it names
// one process, since a pid is reused only by a process that starts later.
[[nodiscard]] Result<uint64_t> process_start_time(int pid);

// The wait status waitpid(2) would have given for what waitid(2) said of an exited child (WIFEXITED and
// friends read it).
[[nodiscard]] int wait_status_of(const siginfo_t& info);

// pidfd_open(2): a file descriptor that becomes readable when PID exits. Close-on-exec.
[[nodiscard]] Result<UniqueFd> pidfd_open(int pid);

// RLIMIT_NOFILE before and after raise_open_files_limit.
struct OpenFilesLimit {
    uint64_t soft = 0;
    uint64_t hard = 0;
    uint64_t raised_soft = 0;
};

// Raises this process's soft limit of open descriptors to its hard limit (a server's clients and children
// need them; 1024 is select()'s legacy, not a server's budget). Returns the limits as they were, which
// children should get back.
[[nodiscard]] Result<OpenFilesLimit> raise_open_files_limit();

}  // namespace mpctl::common
