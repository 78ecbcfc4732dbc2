#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <mpctl/proto/framing.hpp>

using mpctl::proto::LineFramer;

namespace {

// Feeds chunks and records what the framer reports: lines as strings, oversize reports as "<oversize>".
struct Recorder {
    Recorder() = default;
    explicit Recorder(std::size_t max_line) : framer(max_line) {}

    void feed(std::string_view data) {
        framer.feed(
            data, [this](std::string_view line) { events.emplace_back(line); },
            [this] { events.emplace_back("<oversize>"); });
    }

    LineFramer framer;
    std::vector<std::string> events;
};

}  // namespace

TEST_CASE("a line split across reads is delivered once, whole", "[unit][framing]") {
    LineFramer f(64);
    std::vector<std::string> lines;
    int oversize = 0;
    auto on_line = [&](std::string_view l) {
        lines.emplace_back(l);
    };
    auto on_big = [&] {
        ++oversize;
    };
    f.feed("{\"a\":", on_line, on_big);
    CHECK(lines.empty());
    f.feed("1}\n{\"b\":2}\r\n", on_line, on_big);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == "{\"a\":1}");
    CHECK(lines[1] == "{\"b\":2}");
    CHECK(oversize == 0);
}

TEST_CASE("a line fed one byte at a time is delivered once, whole", "[unit][framing]") {
    Recorder r(64);
    const std::string text = "hello world\nsecond\n";
    for (char c : text) {
        r.feed(std::string_view(&c, 1));
    }
    CHECK(r.events == std::vector<std::string>{"hello world", "second"});
    CHECK(r.framer.pending_bytes() == 0);
}

TEST_CASE("several lines in one read are delivered in order", "[unit][framing]") {
    Recorder r(64);
    r.feed("a\nbb\nccc\n");
    CHECK(r.events == std::vector<std::string>{"a", "bb", "ccc"});
}

TEST_CASE("an unfinished line is held until its newline arrives", "[unit][framing]") {
    Recorder r(64);
    r.feed("abc");
    CHECK(r.events.empty());
    CHECK(r.framer.pending_bytes() == 3);
    r.feed("def");
    CHECK(r.events.empty());
    CHECK(r.framer.pending_bytes() == 6);
    r.feed("\n");
    CHECK(r.events == std::vector<std::string>{"abcdef"});
    CHECK(r.framer.pending_bytes() == 0);
}

TEST_CASE("a trailing carriage return is stripped, also when CR and LF arrive in different reads",
          "[unit][framing]") {
    Recorder r(64);
    r.feed("one\r\ntwo\r");
    r.feed("\nthree\r\n");
    CHECK(r.events == std::vector<std::string>{"one", "two", "three"});
}

TEST_CASE("only one trailing carriage return is stripped and inner ones are kept", "[unit][framing]") {
    Recorder r(64);
    r.feed("a\rb\r\r\n");
    CHECK(r.events == std::vector<std::string>{"a\rb\r"});
}

TEST_CASE("blank lines are delivered as empty lines", "[unit][framing]") {
    Recorder r(64);
    r.feed("\n\r\nx\n\n");
    CHECK(r.events == std::vector<std::string>{"", "", "x", ""});
}

TEST_CASE("a line of exactly the limit is delivered", "[unit][framing]") {
    Recorder r(8);
    r.feed(std::string(8, 'a') + "\n");
    CHECK(r.events == std::vector<std::string>{std::string(8, 'a')});
}

TEST_CASE("a line of exactly the limit split across reads is delivered", "[unit][framing]") {
    Recorder r(8);
    r.feed("aaaa");
    r.feed("aaaa");
    r.feed("\n");
    CHECK(r.events == std::vector<std::string>{std::string(8, 'a')});
}

TEST_CASE("an oversize line with its newline in the same read is reported once and skipped",
          "[unit][framing]") {
    Recorder r(8);
    r.feed(std::string(20, 'x') + "\nnext\n");
    CHECK(r.events == std::vector<std::string>{"<oversize>", "next"});
    CHECK(r.framer.pending_bytes() == 0);
}

TEST_CASE("an oversize line whose newline comes in a later read is reported once and skipped up to it",
          "[unit][framing]") {
    Recorder r(16);
    r.feed(std::string(20, 'x'));
    CHECK(r.events == std::vector<std::string>{"<oversize>"});
    CHECK(r.framer.pending_bytes() == 0);
    r.feed(std::string(50, 'y'));
    r.feed(std::string(50, 'z'));
    CHECK(r.events == std::vector<std::string>{"<oversize>"});
    r.feed("tail of the big one\nnext line\n");
    CHECK(r.events == std::vector<std::string>{"<oversize>", "next line"});
}

TEST_CASE("a line that grows past the limit over several reads is reported once", "[unit][framing]") {
    Recorder r(8);
    r.feed("aaaaa");
    CHECK(r.events.empty());
    r.feed("aaaaa");  // 10 bytes now: too long
    CHECK(r.events == std::vector<std::string>{"<oversize>"});
    CHECK(r.framer.pending_bytes() == 0);
    r.feed("aaaaa");
    r.feed("aaaaa\n");
    r.feed("ok\n");
    CHECK(r.events == std::vector<std::string>{"<oversize>", "ok"});
}

TEST_CASE("the line after an oversize line is delivered intact even when it is split", "[unit][framing]") {
    Recorder r(8);
    r.feed(std::string(9, 'x') + "\n{\"a\"");
    r.feed(":1}\n");
    CHECK(r.events == std::vector<std::string>{"<oversize>", "{\"a\":1}"});
}

TEST_CASE("two oversize lines in a row are reported once each", "[unit][framing]") {
    Recorder r(4);
    r.feed("123456\n");
    r.feed("abcdefgh");
    r.feed("ijk\nok\n");
    CHECK(r.events == std::vector<std::string>{"<oversize>", "<oversize>", "ok"});
}

TEST_CASE("an oversize line followed by a blank line delivers the blank line", "[unit][framing]") {
    Recorder r(4);
    r.feed("123456\n\nok\n");
    CHECK(r.events == std::vector<std::string>{"<oversize>", "", "ok"});
}

TEST_CASE("lines before an oversize line in the same read are delivered", "[unit][framing]") {
    Recorder r(4);
    r.feed("ab\n123456789\ncd\n");
    CHECK(r.events == std::vector<std::string>{"ab", "<oversize>", "cd"});
}

TEST_CASE("a newline arriving alone ends a pending line", "[unit][framing]") {
    Recorder r(16);
    r.feed("partial");
    r.feed("\n");
    r.feed("\n");
    CHECK(r.events == std::vector<std::string>{"partial", ""});
}

TEST_CASE("the default limit is the protocol's maximum message size", "[unit][framing]") {
    Recorder r;
    std::string big(mpctl::proto::k_max_message_bytes, 'a');
    r.feed(big);
    r.feed("\n");
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].size() == mpctl::proto::k_max_message_bytes);
    r.feed(big + "a\n");
    CHECK(r.events.back() == "<oversize>");
}

TEST_CASE("an empty read changes nothing", "[unit][framing]") {
    Recorder r(16);
    r.feed("");
    r.feed("ab");
    r.feed("");
    CHECK(r.events.empty());
    CHECK(r.framer.pending_bytes() == 2);
}
