#include <cerrno>
#include <cstdint>
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
    std::vector<std::vector<std::string>> groups;
    groups.push_back(std::move(words));
    return from_word_groups(std::move(groups));
}

ItemSource ItemSource::from_word_groups(std::vector<std::vector<std::string>> groups) {
    ItemSource s;
    s.product_ = groups.empty() ? 0 : 1;
    for (const auto& g : groups) {
        // Saturates instead of wrapping: a product past SIZE_MAX items is never handed out in full anyway.
        s.product_ = g.empty() ? 0 : (s.product_ > SIZE_MAX / g.size() ? SIZE_MAX : s.product_ * g.size());
    }
    s.position_.assign(groups.size(), 0);
    s.groups_ = std::move(groups);
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
        if (next_word_ >= product_) {
            return std::nullopt;
        }
        ++next_word_;
        if (groups_.size() == 1) {
            return std::move(groups_[0][position_[0]++]);
        }
        std::string item;
        for (size_t g = 0; g < groups_.size(); ++g) {
            if (g > 0) {
                item.push_back(k_field_separator);
            }
            item += groups_[g][position_[g]];
        }
        for (size_t g = groups_.size(); g-- > 0;) {
            if (++position_[g] < groups_[g].size()) {
                break;
            }
            position_[g] = 0;
        }
        return item;
    }
    return lines_.pop();
}

size_t ItemSource::ready() const {
    return fd_ < 0 ? product_ - next_word_ : lines_.ready();
}

bool ItemSource::exhausted() const {
    return eof_ && ready() == 0;
}

std::optional<size_t> ItemSource::total() const {
    if (!eof_) {
        return std::nullopt;
    }
    return fd_ < 0 ? product_ : seen_;
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
