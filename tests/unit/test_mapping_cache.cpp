// daemon/shm/MappingCache: a mapping kept from one list request to the next stays true to the name (a
// segment made again under it, or resized, is mapped afresh), and is let go once unused for a sweep or
// when forgotten, so that it never keeps an unlinked segment's memory for long.

#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <mpctl/common/shm.hpp>
#include <mpctl/daemon/shm/mapping_cache.hpp>

#include "scheduler_harness.hpp"

namespace shm = mpctl::common::shm;
using mpctl::daemon::MappingCache;
using mpctl::test::scheduler::FakeTimers;

namespace {

struct Segment {
    std::string name = "mpctl-unit-map-" + std::to_string(::getpid());
    Segment() { ::unlink(shm::path_of(name).c_str()); }
    ~Segment() { ::unlink(shm::path_of(name).c_str()); }
    void make(const std::string& content) const {
        REQUIRE(shm::create(name, content.size(), 0600, content).has_value());
    }
};

std::string seen(const MappingCache::View& v) {
    return {v.data, v.size};
}

}  // namespace

TEST_CASE("mapping cache: one mapping serves the next request, writes land in the segment", "[unit][shm]") {
    Segment s;
    s.make("abcdef");
    FakeTimers timers;
    MappingCache cache(timers);
    auto first = cache.map(s.name, true);
    REQUIRE(first.has_value());
    CHECK(seen(*first) == "abcdef");
    first->data[0] = 'X';
    auto second = cache.map(s.name, false);  // a read-write mapping serves a read
    REQUIRE(second.has_value());
    CHECK(second->data == first->data);
    CHECK(cache.size() == 1);
    char byte = 0;
    int fd = ::open(shm::path_of(s.name).c_str(), O_RDONLY);
    REQUIRE(::pread(fd, &byte, 1, 0) == 1);
    ::close(fd);
    CHECK(byte == 'X');
}

TEST_CASE("mapping cache: a segment made again under the name, or resized, is mapped afresh", "[unit][shm]") {
    Segment s;
    s.make("first");
    FakeTimers timers;
    MappingCache cache(timers);
    REQUIRE(cache.map(s.name, false).has_value());
    ::unlink(shm::path_of(s.name).c_str());
    s.make("second!");
    auto again = cache.map(s.name, false);
    REQUIRE(again.has_value());
    CHECK(seen(*again) == "second!");

    REQUIRE(::truncate(shm::path_of(s.name).c_str(), 3) == 0);
    auto shorter = cache.map(s.name, false);
    REQUIRE(shorter.has_value());
    CHECK(seen(*shorter) == "sec");

    ::unlink(shm::path_of(s.name).c_str());
    auto gone = cache.map(s.name, false);
    REQUIRE_FALSE(gone.has_value());
    CHECK(gone.error().err == ENOENT);
    CHECK(cache.size() == 0);
}

TEST_CASE("mapping cache: a read-only mapping is replaced for a write", "[unit][shm]") {
    Segment s;
    s.make("ro");
    FakeTimers timers;
    MappingCache cache(timers);
    REQUIRE(cache.map(s.name, false).has_value());
    auto rw = cache.map(s.name, true);
    REQUIRE(rw.has_value());
    rw->data[1] = 'w';  // would fault in a read-only mapping
    CHECK(seen(*cache.map(s.name, false)) == "rw");
}

TEST_CASE("mapping cache: an unused mapping is let go by the sweep after next, a forgotten one at once",
          "[unit][shm]") {
    Segment s;
    s.make("pinned");
    FakeTimers timers;
    MappingCache cache(timers);
    REQUIRE(cache.map(s.name, false).has_value());
    timers.advance(MappingCache::k_sweep_every.count());  // used since the last sweep: kept
    CHECK(cache.size() == 1);
    timers.advance(MappingCache::k_sweep_every.count());  // unused for a whole sweep: gone
    CHECK(cache.size() == 0);
    CHECK(timers.pending() == 0);  // no sweep ticks for an empty cache

    REQUIRE(cache.map(s.name, false).has_value());
    cache.forget(s.name);
    CHECK(cache.size() == 0);
}

TEST_CASE("mapping cache: a segment of 0 bytes gives an empty view and is not kept", "[unit][shm]") {
    Segment s;
    int fd = ::open(shm::path_of(s.name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
    FakeTimers timers;
    MappingCache cache(timers);
    auto v = cache.map(s.name, false);
    REQUIRE(v.has_value());
    CHECK(v->size == 0);
    CHECK(cache.size() == 0);
}
