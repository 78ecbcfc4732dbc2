#include <mpctl/cli/map/progress.hpp>
#include <mpctl/cli/map/progress_bar.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/common/terminal_text.hpp>

namespace mpctl::cli::map {

void ProgressBar::draw(size_t done, std::optional<size_t> total, bool force) {
    if (!enabled_) {
        return;
    }
    auto now = std::chrono::steady_clock::now();
    if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) {
        return;
    }
    last_draw_ = now;
    drawn_ = true;
    double elapsed = std::chrono::duration<double>(now - started_).count();
    size_t width = common::terminal_columns(2, 81) - 1;
    // A progress line that cannot be written is not worth failing the map for.
    (void)common::write_all(2, "\r" + progress_line(done, total, elapsed, width) + "\033[K");
    shown_ = true;
}

void ProgressBar::clear() {
    if (shown_) {
        (void)common::write_all(2, "\r\033[K");
        shown_ = false;
        drawn_ = false;
    }
}

void ProgressBar::finish(size_t done, std::optional<size_t> total, const std::string& summary) {
    if (!enabled_) {
        return;
    }
    draw(done, total, true);
    (void)common::write_all(2, summary.empty() ? "\n" : "\n" + summary + "\n");
    shown_ = false;
}

}  // namespace mpctl::cli::map
