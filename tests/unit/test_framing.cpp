#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <mpctl/proto/framing.hpp>

using mpctl::proto::LineFramer;

TEST_CASE("a line split across reads is delivered once, whole", "[unit][framing]") {
    LineFramer f(64);
    std::vector<std::string> lines;
    int oversize = 0;
    auto on_line = [&](std::string_view l) { lines.emplace_back(l); };
    auto on_big = [&] { ++oversize; };
    f.feed("{\"a\":", on_line, on_big);
    CHECK(lines.empty());
    f.feed("1}\n{\"b\":2}\r\n", on_line, on_big);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == "{\"a\":1}");
    CHECK(lines[1] == "{\"b\":2}");
    CHECK(oversize == 0);
}
