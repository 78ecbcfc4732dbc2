#include <limits.h>
#include <string>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <mpctl/common/paths.hpp>

using mpctl::common::absolute_path;
using mpctl::common::parent_dir;

TEST_CASE("absolute paths are kept as given", "[unit][paths]") {
    CHECK(absolute_path("/a/b", "/base") == "/a/b");
    CHECK(absolute_path("/", "/base") == "/");
    CHECK(absolute_path("/a/../b") == "/a/../b");  // no normalisation, no symlink resolution
}

TEST_CASE("relative paths are joined to the base", "[unit][paths]") {
    CHECK(absolute_path("x", "/base") == "/base/x");
    CHECK(absolute_path("x/y", "/base/") == "/base/x/y");
    CHECK(absolute_path("./x", "/base") == "/base/x");
    CHECK(absolute_path(".", "/base") == "/base");
    CHECK(absolute_path("../x", "/base") == "/base/../x");
    CHECK(absolute_path("x", "/") == "/x");
}

TEST_CASE("relative paths without a base are joined to the current directory", "[unit][paths]") {
    char buf[PATH_MAX];
    REQUIRE(::getcwd(buf, sizeof buf) != nullptr);
    std::string cwd = buf;
    std::string expected = cwd == "/" ? "/file" : cwd + "/file";
    CHECK(absolute_path("file") == expected);
    CHECK(absolute_path("./file") == expected);
    CHECK(absolute_path(".") == cwd);
}

TEST_CASE("an empty path stays empty", "[unit][paths]") {
    CHECK(absolute_path("", "/base").empty());
    CHECK(absolute_path("").empty());
}

TEST_CASE("parent_dir strips the last component", "[unit][paths]") {
    CHECK(parent_dir("/a/b/c") == "/a/b");
    CHECK(parent_dir("/a/b.sock") == "/a");
    CHECK(parent_dir("/a") == "/");
    CHECK(parent_dir("a/b") == "a");
}

TEST_CASE("parent_dir of a bare name is the current directory and of the root is the root", "[unit][paths]") {
    CHECK(parent_dir("file") == ".");
    CHECK(parent_dir("") == ".");
    CHECK(parent_dir("/") == "/");
}
