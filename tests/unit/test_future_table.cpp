#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include <mpctl/daemon/tasks/future_table.hpp>

using mpctl::daemon::FutureTable;

TEST_CASE("a watch is called once per watched task, in completion order, and then ends",
          "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> seen;
    table.watch({1, 2, 3}, [&](int64_t id) { seen.push_back(id); });
    CHECK(table.watch_count() == 1);
    table.task_finished(2);
    CHECK(seen == std::vector<int64_t>{2});
    CHECK(table.watch_count() == 1);
    table.task_finished(3);
    table.task_finished(1);
    CHECK(seen == std::vector<int64_t>{2, 3, 1});
    CHECK(table.watch_count() == 0);
    table.task_finished(1);  // a task finishes only once, but a stray report changes nothing
    CHECK(seen == std::vector<int64_t>{2, 3, 1});
}

TEST_CASE("finishing a task nobody watches does nothing", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> seen;
    table.watch({1}, [&](int64_t id) { seen.push_back(id); });
    table.task_finished(99);
    CHECK(seen.empty());
    CHECK(table.watch_count() == 1);
}

TEST_CASE("a watch of no tasks is never called and does not linger", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    auto id = table.watch({}, [&](int64_t) { ++calls; });
    CHECK(table.watch_count() == 0);
    table.task_finished(1);
    table.unwatch(id);
    CHECK(calls == 0);
}

TEST_CASE("watch ids are distinct", "[unit][future_table]") {
    FutureTable table;
    auto a = table.watch({1}, [](int64_t) {});
    auto b = table.watch({1}, [](int64_t) {});
    auto c = table.watch({2}, [](int64_t) {});
    CHECK(a != b);
    CHECK(b != c);
    CHECK(a != c);
    CHECK(a != 0);
}

TEST_CASE("several watches of one task are all called", "[unit][future_table]") {
    FutureTable table;
    std::vector<int> calls;
    table.watch({5}, [&](int64_t) { calls.push_back(1); });
    table.watch({5, 6}, [&](int64_t) { calls.push_back(2); });
    table.watch({5}, [&](int64_t) { calls.push_back(3); });
    table.task_finished(5);
    CHECK(calls == std::vector<int>{1, 2, 3});
    CHECK(table.watch_count() == 1);
    table.task_finished(6);
    CHECK(calls == std::vector<int>{1, 2, 3, 2});
    CHECK(table.watch_count() == 0);
}

TEST_CASE("an unwatched watch is not called any more", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    auto id = table.watch({1, 2}, [&](int64_t) { ++calls; });
    table.task_finished(1);
    table.unwatch(id);
    CHECK(table.watch_count() == 0);
    table.task_finished(2);
    CHECK(calls == 1);
}

TEST_CASE("unwatching twice or unwatching an unknown id is harmless", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    auto id = table.watch({1}, [&](int64_t) { ++calls; });
    auto other = table.watch({1}, [&](int64_t) { calls += 10; });
    table.unwatch(id);
    table.unwatch(id);
    table.unwatch(12345);
    table.unwatch(0);
    CHECK(table.watch_count() == 1);
    table.task_finished(1);
    CHECK(calls == 10);
    table.unwatch(other);  // ended by itself already
    CHECK(table.watch_count() == 0);
}

TEST_CASE("unwatching one watch leaves the other watches of the same task alone", "[unit][future_table]") {
    FutureTable table;
    std::vector<int> calls;
    auto a = table.watch({1}, [&](int64_t) { calls.push_back(1); });
    table.watch({1}, [&](int64_t) { calls.push_back(2); });
    table.unwatch(a);
    table.task_finished(1);
    CHECK(calls == std::vector<int>{2});
}

TEST_CASE("a callback may unwatch its own watch before its last task", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    FutureTable::WatchId self = 0;
    self = table.watch({1, 2, 3}, [&](int64_t) {
        ++calls;
        table.unwatch(self);  // as task.wait with --any does
    });
    table.task_finished(1);
    CHECK(calls == 1);
    CHECK(table.watch_count() == 0);
    table.task_finished(2);
    table.task_finished(3);
    CHECK(calls == 1);
}

TEST_CASE("a callback may unwatch its own watch on its last task", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    FutureTable::WatchId self = 0;
    self = table.watch({1}, [&](int64_t) {
        ++calls;
        table.unwatch(self);
    });
    table.task_finished(1);
    CHECK(calls == 1);
    CHECK(table.watch_count() == 0);
}

TEST_CASE("a callback may unwatch another watch of the same task before it is called",
          "[unit][future_table]") {
    FutureTable table;
    std::vector<int> calls;
    FutureTable::WatchId second = 0;
    table.watch({1}, [&](int64_t) {
        calls.push_back(1);
        table.unwatch(second);
    });
    second = table.watch({1, 2}, [&](int64_t) { calls.push_back(2); });
    table.watch({1}, [&](int64_t) { calls.push_back(3); });
    table.task_finished(1);
    CHECK(calls == std::vector<int>{1, 3});
    CHECK(table.watch_count() == 0);
    table.task_finished(2);
    CHECK(calls == std::vector<int>{1, 3});
}

TEST_CASE("a callback may unwatch a watch of other tasks", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> other_calls;
    auto other = table.watch({2, 3}, [&](int64_t id) { other_calls.push_back(id); });
    table.watch({1}, [&](int64_t) { table.unwatch(other); });
    table.task_finished(1);
    CHECK(table.watch_count() == 0);
    table.task_finished(2);
    table.task_finished(3);
    CHECK(other_calls.empty());
}

TEST_CASE("a callback may add a watch, which waits for the next finish", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> late;
    table.watch({1}, [&](int64_t) { table.watch({1, 2}, [&](int64_t id) { late.push_back(id); }); });
    table.task_finished(1);
    CHECK(late.empty());  // added during task 1's round: not called for it
    CHECK(table.watch_count() == 1);
    table.task_finished(2);
    CHECK(late == std::vector<int64_t>{2});
    CHECK(table.watch_count() == 1);  // still waits for 1
}

TEST_CASE("a callback may finish another task re-entrantly", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> seen;
    table.watch({1, 2}, [&](int64_t id) {
        seen.push_back(id);
        if (id == 1) {
            table.task_finished(2);
        }
    });
    table.task_finished(1);
    CHECK(seen == std::vector<int64_t>{1, 2});
    CHECK(table.watch_count() == 0);
}

TEST_CASE("a watch listing a task twice ends once that task finished", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> seen;
    table.watch({7, 7}, [&](int64_t id) { seen.push_back(id); });
    table.task_finished(7);
    CHECK(table.watch_count() == 0);
    REQUIRE_FALSE(seen.empty());
    for (int64_t id : seen) {
        CHECK(id == 7);
    }
    // "Once for each of IDS": one call per entry.
    CHECK(seen.size() == 2);
}

TEST_CASE("a watch listing a task twice is cleanly removed by unwatch", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    auto id = table.watch({7, 8, 7}, [&](int64_t) { ++calls; });
    table.unwatch(id);
    CHECK(table.watch_count() == 0);
    table.task_finished(7);
    table.task_finished(8);
    CHECK(calls == 0);
}

TEST_CASE("a watch listing a task twice still waits for its other tasks", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> seen;
    table.watch({7, 7, 8}, [&](int64_t id) { seen.push_back(id); });
    table.task_finished(7);
    CHECK(table.watch_count() == 1);
    table.task_finished(8);
    CHECK(table.watch_count() == 0);
    CHECK(seen.back() == 8);
}

TEST_CASE("many watches on many tasks all end", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    for (int64_t w = 0; w < 100; ++w) {
        table.watch({w, w + 1, w + 2}, [&](int64_t) { ++calls; });
    }
    for (int64_t t = 0; t < 102; ++t) {
        table.task_finished(t);
    }
    CHECK(calls == 300);
    CHECK(table.watch_count() == 0);
}
