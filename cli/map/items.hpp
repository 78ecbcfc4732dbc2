#pragma once
// Where the items of `mpctl map` come from: the words after `:::`, or one per line of a file descriptor
// (mpctl's stdin), read as it arrives so that a million lines are never in memory at once. Single-threaded;
// the owner polls fd() and calls fill() when it is readable.
//
// Several `:::` groups give their cross product, as GNU parallel's input sources (the last group varies
// fastest): each item is then a tuple, its values joined by k_field_separator, a NUL, which no word can hold.

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace mpctl::cli::map {

// Splits bytes into lines: every '\n' ends one (the '\n' is dropped, everything else is kept byte for
// byte, '\r' included); a last line without '\n' counts at end of input. Empty lines are items too.
class LineSplitter {
  public:
    void feed(const char* data, size_t size);
    void finish();  // end of input: a partial last line becomes a line
    [[nodiscard]] std::optional<std::string> pop();
    [[nodiscard]] size_t ready() const { return lines_.size(); }

  private:
    std::string partial_;
    std::deque<std::string> lines_;
};

inline constexpr char k_field_separator = '\0';

class ItemSource {
  public:
    // The words after `:::` (all known at once).
    static ItemSource from_words(std::vector<std::string> words);
    // The cross product of the groups of words after each `:::` (one group: its words).
    static ItemSource from_word_groups(std::vector<std::vector<std::string>> groups);
    // True for lines of input, the only items that can hold a NUL byte of their own.
    [[nodiscard]] bool reads_lines() const { return fd_ >= 0; }
    // Lines read from FD (not owned) as they come.
    static ItemSource from_fd(int fd);

    // The next item if one is ready (never blocks).
    [[nodiscard]] std::optional<std::string> next();
    [[nodiscard]] size_t ready() const;
    // True once every item has been handed out.
    [[nodiscard]] bool exhausted() const;
    // True once the end of the input is known (then total() is known too).
    [[nodiscard]] bool at_eof() const { return eof_; }
    // How many items there are in all, once known.
    [[nodiscard]] std::optional<size_t> total() const;
    // The fd to poll for more input, or -1 when there is none to read.
    [[nodiscard]] int fd() const { return eof_ ? -1 : fd_; }
    // One read(2) of the fd (call when it is readable). Throws std::runtime_error on read errors.
    void fill();

  private:
    std::vector<std::vector<std::string>> groups_;
    std::vector<size_t> position_;  // the odometer: the index of the next item's word in each group
    size_t product_ = 0;            // how many items the groups make
    size_t next_word_ = 0;          // items handed out
    int fd_ = -1;
    bool eof_ = false;
    size_t seen_ = 0;  // items produced by the splitter so far (lines read)
    LineSplitter lines_;
};

}  // namespace mpctl::cli::map
