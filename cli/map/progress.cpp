#include <cstdio>

#include <mpctl/cli/map/progress.hpp>

namespace mpctl::cli::map {

namespace {

std::string clock(double seconds) {
    long s = static_cast<long>(seconds + 0.5);
    char buf[32];
    if (s >= 3600) {
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    } else {
        std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    }
    return buf;
}

}  // namespace

std::string progress_line(size_t done, std::optional<size_t> total, double elapsed_s, size_t width) {
    double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
    char rate_text[32];
    std::snprintf(rate_text, sizeof rate_text, rate >= 10 ? "%.0f/s" : "%.1f/s", rate);
    if (!total) {
        return std::to_string(done) + "/? " + rate_text;
    }
    std::string counts = std::to_string(done) + "/" + std::to_string(*total);
    int percent = *total == 0 ? 100 : static_cast<int>(100.0 * static_cast<double>(done) / *total);
    std::string eta = "ETA ";
    if (done >= *total) {
        eta += clock(0);
    } else if (rate > 0) {
        eta += clock(static_cast<double>(*total - done) / rate);
    } else {
        eta += "?";
    }
    std::string tail = " " + std::to_string(percent) + "% " + rate_text + " " + eta;
    size_t fixed = counts.size() + 3 + tail.size();  // " [" and "]"
    std::string line = counts;
    if (width > fixed + 5) {
        size_t bar = std::min<size_t>(width - fixed, 40);
        size_t filled = *total == 0 ? bar : bar * std::min(done, *total) / *total;
        line += " [" + std::string(filled, '#') + std::string(bar - filled, '.') + "]";
    }
    return line + tail;
}

std::string outcome_summary(size_t succeeded, size_t failed, size_t cancelled, size_t not_started) {
    if (failed == 0 && cancelled == 0 && not_started == 0) {
        return "";
    }
    std::string out;
    auto add = [&](size_t n, const char* what, bool always) {
        if (n > 0 || always) {
            out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + what;
        }
    };
    add(succeeded, "succeeded", true);
    add(failed, "failed", false);
    add(cancelled, "cancelled", false);
    add(not_started, "not started", false);
    return out;
}

}  // namespace mpctl::cli::map
