// common/shm: segment names as shm_open spells them, and a segment made whole under its name.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

#include <mpctl/common/shm.hpp>

namespace shm = mpctl::common::shm;

TEST_CASE("segment names: a leading / is dropped, 1-255 bytes without / or NUL, not . or ..", "[unit][shm]") {
    CHECK(shm::normalize_name("/psm_1234").value() == "psm_1234");
    CHECK(shm::normalize_name("plain").value() == "plain");
    CHECK(shm::normalize_name(std::string(255, 'n')).has_value());
    CHECK(shm::normalize_name("/" + std::string(255, 'n')).has_value());  // the / is not counted
    CHECK(shm::normalize_name("\xc3\xa9t\xc3\xa9").has_value());          // bytes, as the kernel takes them
    std::vector<std::string> bad_names{
        "", "/", "a/b", "//a", ".", "..", "/..", std::string("a\0b", 3), std::string(256, 'n')};
    for (const auto& bad : bad_names) {
        INFO(bad);
        auto r = shm::normalize_name(bad);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == mpctl::common::Errc::invalid);
    }
    CHECK(shm::path_of("x") == "/dev/shm/x");
}

TEST_CASE("a segment is created sized, with its mode, and never over an existing name", "[unit][shm]") {
    std::string name = "mpctl-unit-" + std::to_string(::getpid());
    auto fd = shm::create(name, 12345, 0640);
    REQUIRE(fd.has_value());
    struct stat st {};
    REQUIRE(::stat(shm::path_of(name).c_str(), &st) == 0);
    CHECK(st.st_size == 12345);
    CHECK((st.st_mode & 07777) == 0640);
    auto again = shm::create(name, 1, 0600);
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().err == EEXIST);
    CHECK(shm::open_segment(name, O_RDONLY).has_value());
    REQUIRE(::unlink(shm::path_of(name).c_str()) == 0);
    CHECK(shm::open_segment(name, O_RDONLY).error().err == ENOENT);
}
