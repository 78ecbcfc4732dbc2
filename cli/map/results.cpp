#include <fcntl.h>
#include <sys/stat.h>

#include <mpctl/cli/map/results.hpp>
#include <mpctl/common/sys.hpp>

namespace mpctl::cli::map {

void ResultWriter::emit(const Finished& f) {
    if (broken_) {
        return;
    }
    before_output_();
    if (!f.json_line.empty()) {
        write_or_stop(1, f.json_line);
    } else {
        copy_file(f.stdout_path, 1);
        copy_file(f.stderr_path, 2);
    }
    if (!f.stderr_text.empty()) {
        write_or_stop(2, f.stderr_text);
    }
}

void ResultWriter::copy_file(const std::string& path, int fd) {
    // Most outputs are empty: one stat(2) instead of open, read and close.
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0 || st.st_size == 0) {
        return;
    }
    auto in = common::open_cloexec(path, O_RDONLY);
    if (!in) {
        return;
    }
    static char buf[64 * 1024];  // mpctl is single-threaded
    for (;;) {
        auto n = common::read_once(in->get(), buf, sizeof buf);
        if (!n || *n == 0) {
            return;
        }
        if (!write_or_stop(fd, std::string_view(buf, *n))) {
            return;
        }
    }
}

bool ResultWriter::write_or_stop(int fd, std::string_view bytes) {
    if (auto r = common::write_all(fd, bytes); !r) {
        if (fd == 1) {
            stdout_closed();
        }
        return false;
    }
    return true;
}

void ResultWriter::stdout_closed() {
    if (broken_) {
        return;
    }
    broken_ = true;
    on_stdout_closed_();
}

}  // namespace mpctl::cli::map
