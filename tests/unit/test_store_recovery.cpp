// A damaged journal found at open (daemon/store/integrity). The damage is real: pages of the file
// overwritten (tests/support/journal_damage).

#include "journal_damage.hpp"
#include "store_harness.hpp"

using namespace mpctl::test::store;

namespace {

// Writes N tasks with ids 1..N (and a pool) to a journal at PATH, and closes it cleanly.
void write_journal(const std::string& path, int n) {
    Loop loop;
    auto store = open_store(path, Durability::normal);
    store->start(loop.io);
    std::vector<Task> tasks;
    for (int i = 1; i <= n; ++i) {
        tasks.push_back(make_task(
            i, {{"argv", {"echo", "task " + std::to_string(i)}}, {"name", "n" + std::to_string(i)}}));
    }
    std::vector<const Task*> ptrs;
    for (const auto& t : tasks) {
        ptrs.push_back(&t);
    }
    REQUIRE(insert(*store, loop, ptrs));
    REQUIRE(set_pool(*store, loop, "gpu", 2));
    store->stop();
}

}  // namespace

TEST_CASE("a journal damaged where no start-up read looks is refused at open, and left as it was",
          "[unit][store][recovery]") {
    mpctl::test::TempDir dir;
    const std::string path = dir / "mpctld.db";
    write_journal(path, 50);
    // The pools table: read whole at start, but a damaged one used to read as "no more rows".
    auto pages = mpctl::test::leaf_pages(path, "pools");
    REQUIRE(pages.size() == 1);
    mpctl::test::overwrite_page(path, pages.front());
    std::string damaged = mpctl::test::file_bytes(path);
    auto store = Store::open(path, Durability::normal);
    REQUIRE_FALSE(store);
    CHECK(store.error().code == mpctl::common::Errc::damaged);
    CHECK(store.error().message().find(path) != std::string::npos);
    CHECK(store.error().message().find("malformed") != std::string::npos);
    CHECK(mpctl::test::file_bytes(path) == damaged);
}
