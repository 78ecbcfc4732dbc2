#pragma once
// Line framing of the wire: one JSON message per '\n'-terminated line, at most k_max_message_bytes long.
// A longer line is reported once and skipped up to its newline, so the connection stays usable.

#include <cstddef>
#include <string>
#include <string_view>

namespace mpctl::proto {

inline constexpr std::size_t k_max_message_bytes = 1024 * 1024;

class LineFramer {
  public:
    explicit LineFramer(std::size_t max_line = k_max_message_bytes) : max_line_(max_line) {}

    // Splits DATA into lines. ON_LINE(std::string_view) gets each complete line without its '\n' (and
    // without a trailing '\r'); ON_OVERSIZE() is called once for each line longer than the limit.
    template <class OnLine, class OnOversize>
    void feed(std::string_view data, OnLine&& on_line, OnOversize&& on_oversize) {
        while (!data.empty()) {
            data.remove_prefix(feed_one(data, on_line, on_oversize));
        }
    }

    // The same for at most one line: consumes DATA up to and including its first '\n' (all of it when
    // there is none) and returns how many bytes that was. A reader that must not take the next request
    // before the last one's answer has drained (Session) feeds a line at a time and keeps the rest.
    template <class OnLine, class OnOversize>
    std::size_t feed_one(std::string_view data, OnLine&& on_line, OnOversize&& on_oversize) {
        auto nl = data.find('\n');
        std::string_view chunk = data.substr(0, nl);
        if (discarding_) {
            if (nl != std::string_view::npos) {
                discarding_ = false;
            }
        } else if (partial_.size() + chunk.size() > max_line_) {
            partial_.clear();
            partial_.shrink_to_fit();
            on_oversize();
            discarding_ = nl == std::string_view::npos;
        } else if (nl == std::string_view::npos) {
            partial_.append(chunk);
        } else if (partial_.empty()) {
            on_line(trim_cr(chunk));
        } else {
            partial_.append(chunk);
            std::string line = std::move(partial_);
            partial_.clear();
            on_line(trim_cr(line));
        }
        return nl == std::string_view::npos ? data.size() : nl + 1;
    }

    // Bytes of an unfinished line held so far.
    [[nodiscard]] std::size_t pending_bytes() const noexcept { return partial_.size(); }

  private:
    static std::string_view trim_cr(std::string_view line) {
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        return line;
    }

    std::size_t max_line_;
    std::string partial_;
    bool discarding_ = false;
};

}  // namespace mpctl::proto
