// libFuzzer target: the line framer (proto/framing.hpp), fed as the daemon's Session feeds it.
//
// The input's first byte sets the line cap (the daemon's is 1 MiB, out of a fuzzer's reach; the logic is
// the same for any cap), its second seeds how the rest is cut into reads. The rest is the byte stream a
// client sends. Whatever the cut, the framer must report what a plain model of the wire says: each
// '\n'-terminated line once (one trailing '\r' removed), or one "too long" for a line past the cap, and
// hold exactly the unfinished tail. Fed one line at a time, as Session does behind its backpressure, it
// must say the same, and always make progress.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <mpctl/proto/framing.hpp>

namespace {

using Event = std::optional<std::string>;  // a line, or nullopt for "too long"

struct Framed {
    std::vector<Event> events;
    std::size_t pending = 0;
};

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_framer: %s\n", what);
    std::abort();
}

// What the wire means, written the plain way: split at every '\n', judge each line whole.
Framed model(std::string_view data, std::size_t max_line) {
    Framed out;
    for (;;) {
        std::size_t nl = data.find('\n');
        std::string_view line = data.substr(0, nl);
        if (nl == std::string_view::npos) {
            if (line.size() > max_line) {
                out.events.emplace_back(std::nullopt);
            } else {
                out.pending = line.size();
            }
            return out;
        }
        if (line.size() > max_line) {
            out.events.emplace_back(std::nullopt);
        } else {
            if (!line.empty() && line.back() == '\r') {
                line.remove_suffix(1);
            }
            out.events.emplace_back(std::string(line));
        }
        data.remove_prefix(nl + 1);
    }
}

// Reads of 1 to 64 bytes, from a small linear congruential generator: the same input cuts the same way.
std::vector<std::string_view> cut(std::string_view data, uint32_t seed) {
    std::vector<std::string_view> reads;
    while (!data.empty()) {
        seed = seed * 1103515245u + 12345u;
        std::size_t n = std::min<std::size_t>(data.size(), 1 + (seed >> 16) % 64);
        reads.push_back(data.substr(0, n));
        data.remove_prefix(n);
    }
    return reads;
}

// The whole of each read at once (LineFramer::feed).
Framed by_feed(const std::vector<std::string_view>& reads, std::size_t max_line) {
    Framed out;
    mpctl::proto::LineFramer framer(max_line);
    for (auto r : reads) {
        framer.feed(
            r, [&](std::string_view line) { out.events.emplace_back(std::string(line)); },
            [&] { out.events.emplace_back(std::nullopt); });
    }
    out.pending = framer.pending_bytes();
    return out;
}

// As Session::handle_next_line does: at most one line per call, the rest of the read kept for later.
Framed by_line(const std::vector<std::string_view>& reads, std::size_t max_line) {
    Framed out;
    mpctl::proto::LineFramer framer(max_line);
    for (auto r : reads) {
        while (!r.empty()) {
            std::size_t before = out.events.size();
            std::size_t used = framer.feed_one(
                r, [&](std::string_view line) { out.events.emplace_back(std::string(line)); },
                [&] { out.events.emplace_back(std::nullopt); });
            if (used == 0 || used > r.size()) {
                fail("feed_one consumed nothing, or more than it was given");
            }
            if (out.events.size() > before + 1) {
                fail("feed_one reported more than one line");
            }
            if (used < r.size() && r[used - 1] != '\n') {
                fail("feed_one stopped before the end of the data but not after a newline");
            }
            r.remove_prefix(used);
        }
    }
    out.pending = framer.pending_bytes();
    return out;
}

void expect_same(const Framed& want, const Framed& got, const char* how) {
    if (got.events != want.events) {
        std::fprintf(stderr, "fuzz_framer: %s: %zu events, the model says %zu\n", how, got.events.size(),
                     want.events.size());
        fail("the framer's lines differ from the model's");
    }
    if (got.pending != want.pending) {
        fail("the framer holds a different unfinished tail than the model");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) {
        return -1;
    }
    std::size_t max_line = 1 + std::size_t{data[0]} * 4;
    uint32_t seed = data[1];
    std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

    Framed want = model(stream, max_line);
    for (const Event& e : want.events) {
        if (e && (e->find('\n') != std::string::npos || e->size() > max_line)) {
            fail("the model let a newline or an overlong line through");
        }
    }
    expect_same(want, by_feed({stream}, max_line), "one read");
    auto reads = cut(stream, seed);
    expect_same(want, by_feed(reads, max_line), "cut reads");
    expect_same(want, by_line(reads, max_line), "a line at a time");
    return 0;
}
