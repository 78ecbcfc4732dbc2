#include <cinttypes>
#include <cstdio>
#include <fcntl.h>

#include <mpctl/cli/map/joblog.hpp>
#include <mpctl/common/shell_quote.hpp>
#include <mpctl/common/sys.hpp>

namespace mpctl::cli::map {

namespace {

std::string seconds_ms(int64_t ms) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
    return buf;
}

std::string escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out.push_back(c);
        }
    }
    return out;
}

}  // namespace

std::string joblog_header() {
    return "Seq\tId\tExitval\tSignal\tStarttime\tJobRuntime\tCommand\n";
}

std::string joblog_line(const JoblogEntry& e) {
    std::string line = std::to_string(e.seq) + "\t" + std::to_string(e.id) + "\t" +
                       std::to_string(e.exit_code.value_or(-1)) + "\t" +
                       std::to_string(e.signal.value_or(0)) + "\t" + seconds_ms(e.started_at_ms.value_or(0)) +
                       "\t" + seconds_ms(std::max<int64_t>(0, e.duration_ms.value_or(0))) + "\t" + e.command +
                       "\n";
    return line;
}

std::string joblog_command(const std::optional<std::vector<std::string>>& argv,
                           const std::optional<std::string>& shell) {
    if (!argv) {
        return escape(shell.value_or(""));
    }
    std::string out;
    for (const auto& w : *argv) {
        out += (out.empty() ? "" : " ") + common::shell_quote(w);
    }
    return escape(out);
}

common::Result<JoblogFile> JoblogFile::create(const std::string& path) {
    auto fd = common::open_cloexec(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (!fd) {
        return std::unexpected(fd.error());
    }
    JoblogFile file(std::move(*fd));
    if (auto r = common::write_all(file.fd_.get(), joblog_header()); !r) {
        return std::unexpected(r.error());
    }
    return file;
}

common::Result<void> JoblogFile::write(const JoblogEntry& entry) {
    return common::write_all(fd_.get(), joblog_line(entry));
}

}  // namespace mpctl::cli::map
