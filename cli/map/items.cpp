#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <unistd.h>

#include <mpctl/cli/map/items.hpp>
#include <mpctl/common/sys.hpp>

namespace mpctl::cli::map {

void LineSplitter::feed(const char* data, size_t size) {
    const char* end = data + size;
    while (data < end) {
        const char* nl = static_cast<const char*>(std::memchr(data, '\n', static_cast<size_t>(end - data)));
        if (nl == nullptr) {
            partial_.append(data, end);
            return;
        }
        partial_.append(data, nl);
        lines_.push_back(std::move(partial_));
        partial_.clear();
        data = nl + 1;
    }
}

void LineSplitter::finish() {
    if (!partial_.empty()) {
        lines_.push_back(std::move(partial_));
        partial_.clear();
    }
}

std::optional<std::string> LineSplitter::pop() {
    if (lines_.empty()) {
        return std::nullopt;
    }
    std::string line = std::move(lines_.front());
    lines_.pop_front();
    return line;
}

ItemSource ItemSource::from_words(std::vector<std::string> words) {
    ItemSource s;
    s.words_ = std::move(words);
    s.eof_ = true;
    return s;
}

ItemSource ItemSource::from_fd(int fd) {
    ItemSource s;
    s.fd_ = fd;
    return s;
}

std::optional<std::string> ItemSource::next() {
    if (fd_ < 0) {
        if (next_word_ < words_.size()) {
            return std::move(words_[next_word_++]);
        }
        return std::nullopt;
    }
    return lines_.pop();
}

size_t ItemSource::ready() const {
    return fd_ < 0 ? words_.size() - next_word_ : lines_.ready();
}

bool ItemSource::exhausted() const {
    return eof_ && ready() == 0;
}

std::optional<size_t> ItemSource::total() const {
    if (!eof_) {
        return std::nullopt;
    }
    return fd_ < 0 ? words_.size() : seen_;
}

void ItemSource::fill() {
    if (eof_ || fd_ < 0) {
        return;
    }
    char buf[64 * 1024];
    auto n = common::read_once(fd_, buf, sizeof buf);
    if (!n) {
        if (n.error().err == EAGAIN || n.error().err == EWOULDBLOCK) {
            return;
        }
        throw std::runtime_error("cannot read the items from stdin: " + n.error().message());
    }
    size_t before = lines_.ready();
    if (*n == 0) {
        lines_.finish();
        eof_ = true;
    } else {
        lines_.feed(buf, *n);
    }
    seen_ += lines_.ready() - before;
}

}  // namespace mpctl::cli::map
