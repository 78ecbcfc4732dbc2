#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/service/log_file.hpp>

namespace mpctl::daemon {

bool rotate_log_files(const std::string& path, int keep) {
    if (keep <= 0) {
        return ::unlink(path.c_str()) == 0 || errno == ENOENT;
    }
    // Oldest first, so that each rename lands on a name already moved on (rename replaces PATH.KEEP).
    for (int i = keep - 1; i >= 1; --i) {
        (void)::rename((path + "." + std::to_string(i)).c_str(),
                       (path + "." + std::to_string(i + 1)).c_str());
    }
    return ::rename(path.c_str(), (path + ".1").c_str()) == 0 || errno == ENOENT;
}

LogFileSink::LogFileSink(std::string path, int fd, uint64_t max_size, int keep)
    : path_(std::move(path)), fd_(fd), max_size_(max_size), keep_(keep) {
    // A restart appends to the log the last run left: that counts towards the cap.
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) {
        size_ = static_cast<uint64_t>(st.st_size);
    }
}

void LogFileSink::sink_it_(const spdlog::details::log_msg& msg) {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    // Before the write, so that a file never passes the cap (but by a line longer than the cap itself).
    if (max_size_ > 0 && size_ > 0 && size_ + line.size() > max_size_) {
        rotate();
    }
    (void)common::write_all(fd_, std::string_view(line.data(), line.size()));
    size_ += line.size();
}

void LogFileSink::rotate() {
    // Reset first: if the rotation fails, the next try waits for another MAX_SIZE bytes rather than
    // shifting the files again at every line.
    size_ = 0;
    if (!rotate_log_files(path_, keep_)) {
        std::string why = "mpctld: cannot rotate the log " + path_ + ": " + std::strerror(errno) + "\n";
        (void)common::write_all(fd_, why);
        return;
    }
    int fresh = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fresh < 0) {
        // The old file (renamed) keeps taking the lines: nothing is lost, the cap is what gives.
        std::string why = "mpctld: cannot open a fresh log " + path_ + ": " + std::strerror(errno) + "\n";
        (void)common::write_all(fd_, why);
        return;
    }
    // dup2 does not keep O_CLOEXEC: descriptor 2 stays inheritable, as daemonize left it. Tasks get their
    // own descriptor 2 from the spawner, so none inherits the log.
    if (fresh != fd_) {
        ::dup2(fresh, fd_);
        ::close(fresh);
    }
}

}  // namespace mpctl::daemon
