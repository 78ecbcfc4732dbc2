#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <mpctl/daemon/service/daemonize.hpp>
#include <mpctl/daemon/service/log_file.hpp>
#include <mpctl/daemon/service/logging.hpp>

namespace mpctl::daemon {

namespace {

constexpr const char* k_timestamped = "%Y-%m-%dT%H:%M:%S.%e %l %v";

// sd-daemon(3)'s "<N>" before a line: the journal takes it off and files the line at priority N.
class PriorityFlag final : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg& msg, const std::tm& /*time*/,
                spdlog::memory_buf_t& dest) override {
        std::string_view prefix = "<6>";
        switch (msg.level) {
            case spdlog::level::critical:
            case spdlog::level::err:
                prefix = "<3>";
                break;
            case spdlog::level::warn:
                prefix = "<4>";
                break;
            case spdlog::level::debug:
            case spdlog::level::trace:
                prefix = "<7>";
                break;
            default:
                break;
        }
        dest.append(prefix.data(), prefix.data() + prefix.size());
    }
    [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<PriorityFlag>();
    }
};

}  // namespace

bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr || *stream == '\0') {
        return started_by_systemd();
    }
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) {
        return false;
    }
    struct stat st {};
    return ::fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

std::unique_ptr<spdlog::formatter> journal_formatter() {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<PriorityFlag>('*').set_pattern("%*%v");
    return formatter;
}

void start_logging(const std::string& level) {
    // _mt: the journal's checkpointer thread logs too.
    auto logger = spdlog::stderr_logger_mt("mpctld");
    spdlog::set_default_logger(logger);
    if (stderr_is_journal()) {
        logger->set_formatter(journal_formatter());
    } else {
        logger->set_pattern(k_timestamped);
    }
    spdlog::set_level(spdlog::level::from_str(level));
}

void log_to_file(const std::string& path, uint64_t max_size, int keep) {
    auto sink = std::make_shared<LogFileSink>(path, STDERR_FILENO, max_size, keep);
    auto logger = std::make_shared<spdlog::logger>("mpctld", std::move(sink));
    logger->set_pattern(k_timestamped);
    logger->set_level(spdlog::default_logger()->level());
    spdlog::set_default_logger(logger);
}

}  // namespace mpctl::daemon
