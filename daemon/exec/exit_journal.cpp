#include <charconv>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/exit_journal.hpp>

namespace mpctl::daemon {

std::string exit_journal_path(const std::string& state_dir) {
    return state_dir + "/task-exits";
}

std::string format_exit_record(const ExitRecord& record) {
    return std::to_string(record.pid) + " " + std::to_string(record.start_ticks) + " " +
           std::to_string(record.wait_status) + "\n";
}

std::optional<ExitRecord> parse_exit_record(std::string_view line) {
    ExitRecord r;
    const char* p = line.data();
    const char* end = line.data() + line.size();
    auto field = [&](auto& value) {
        auto [next, ec] = std::from_chars(p, end, value);
        if (ec != std::errc{} || next == p) {
            return false;
        }
        p = next;
        return true;
    };
    auto space = [&] {
        if (p == end || *p != ' ') {
            return false;
        }
        ++p;
        return true;
    };
    if (!field(r.pid) || !space() || !field(r.start_ticks) || !space() || !field(r.wait_status) || p != end ||
        r.pid <= 0) {
        return std::nullopt;
    }
    return r;
}

common::Result<common::UniqueFd> open_exit_journal_for_append(const std::string& path) {
    return common::open_cloexec(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
}

common::Result<void> append_exit_record(int fd, const ExitRecord& record) {
    return common::write_all(fd, format_exit_record(record));
}

std::vector<ExitRecord> ExitJournal::read_new() {
    std::vector<ExitRecord> records;
    auto fd = common::open_cloexec(path_, O_RDONLY);
    if (!fd) {
        return records;
    }
    std::string text;
    char buf[4096];
    for (;;) {
        ssize_t n = ::pread(fd->get(), buf, sizeof buf, static_cast<off_t>(offset_ + text.size()));
        if (n <= 0) {
            break;
        }
        text.append(buf, static_cast<size_t>(n));
    }
    size_t begin = 0;
    for (size_t nl; (nl = text.find('\n', begin)) != std::string::npos; begin = nl + 1) {
        if (auto r = parse_exit_record(std::string_view(text).substr(begin, nl - begin))) {
            records.push_back(*r);
        }
    }
    offset_ += begin;  // a line still being written is read whole next time
    return records;
}

void ExitJournal::clear() {
    if (::truncate(path_.c_str(), 0) == 0 || errno == ENOENT) {
        offset_ = 0;
    }
}

uint64_t boottime_ticks_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    static const auto hz = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
    return static_cast<uint64_t>(ts.tv_sec) * hz + static_cast<uint64_t>(ts.tv_nsec) * hz / 1000000000u;
}

}  // namespace mpctl::daemon
