#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <mpctl/daemon/tasks/future_table.hpp>

using mpctl::daemon::FutureTable;
using mpctl::daemon::Task;
using mpctl::daemon::TaskState;

namespace {

// A watch whose callback hears the finished task's id.
FutureTable::WatchId watch_ids(FutureTable& table, const std::vector<int64_t>& ids,
                               std::function<void(int64_t)> fn) {
    return table.watch(ids, [fn = std::move(fn)](const Task& t) { fn(t.id); });
}

Task task_in(int64_t id, TaskState state) {
    Task t;
    t.id = id;
    t.state = state;
    return t;
}

// Reports task ID finished, as TaskEvents does.
void finish(FutureTable& table, int64_t id) {
    table.task_changed(task_in(id, TaskState::succeeded));
}

}  // namespace

TEST_CASE("a watch is called once per watched task, in completion order, and then ends",
          "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> seen;
    watch_ids(table, {1, 2, 3}, [&](int64_t id) { seen.push_back(id); });
    CHECK(table.watch_count() == 1);
    finish(table, 2);
    CHECK(seen == std::vector<int64_t>{2});
    CHECK(table.watch_count() == 1);
    finish(table, 3);
    finish(table, 1);
    CHECK(seen == std::vector<int64_t>{2, 3, 1});
    CHECK(table.watch_count() == 0);
    finish(table, 1);  // a task finishes only once, but a stray report changes nothing
    CHECK(seen == std::vector<int64_t>{2, 3, 1});
}

TEST_CASE("finishing a task nobody watches does nothing", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> seen;
    watch_ids(table, {1}, [&](int64_t id) { seen.push_back(id); });
    finish(table, 99);
    CHECK(seen.empty());
    CHECK(table.watch_count() == 1);
}

TEST_CASE("a watch of no tasks is never called and does not linger", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    auto id = watch_ids(table, {}, [&](int64_t) { ++calls; });
    CHECK(table.watch_count() == 0);
    finish(table, 1);
    table.unwatch(id);
    CHECK(calls == 0);
}

TEST_CASE("watch ids are distinct", "[unit][future_table]") {
    FutureTable table;
    auto a = watch_ids(table, {1}, [](int64_t) {});
    auto b = watch_ids(table, {1}, [](int64_t) {});
    auto c = watch_ids(table, {2}, [](int64_t) {});
    CHECK(a != b);
    CHECK(b != c);
    CHECK(a != c);
    CHECK(a != 0);
}

TEST_CASE("several watches of one task are all called", "[unit][future_table]") {
    FutureTable table;
    std::vector<int> calls;
    watch_ids(table, {5}, [&](int64_t) { calls.push_back(1); });
    watch_ids(table, {5, 6}, [&](int64_t) { calls.push_back(2); });
    watch_ids(table, {5}, [&](int64_t) { calls.push_back(3); });
    finish(table, 5);
    CHECK(calls == std::vector<int>{1, 2, 3});
    CHECK(table.watch_count() == 1);
    finish(table, 6);
    CHECK(calls == std::vector<int>{1, 2, 3, 2});
    CHECK(table.watch_count() == 0);
}

TEST_CASE("an unwatched watch is not called any more", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    auto id = watch_ids(table, {1, 2}, [&](int64_t) { ++calls; });
    finish(table, 1);
    table.unwatch(id);
    CHECK(table.watch_count() == 0);
    finish(table, 2);
    CHECK(calls == 1);
}

TEST_CASE("unwatching twice or unwatching an unknown id is harmless", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    auto id = watch_ids(table, {1}, [&](int64_t) { ++calls; });
    auto other = watch_ids(table, {1}, [&](int64_t) { calls += 10; });
    table.unwatch(id);
    table.unwatch(id);
    table.unwatch(12345);
    table.unwatch(0);
    CHECK(table.watch_count() == 1);
    finish(table, 1);
    CHECK(calls == 10);
    table.unwatch(other);  // ended by itself already
    CHECK(table.watch_count() == 0);
}

TEST_CASE("unwatching one watch leaves the other watches of the same task alone", "[unit][future_table]") {
    FutureTable table;
    std::vector<int> calls;
    auto a = watch_ids(table, {1}, [&](int64_t) { calls.push_back(1); });
    watch_ids(table, {1}, [&](int64_t) { calls.push_back(2); });
    table.unwatch(a);
    finish(table, 1);
    CHECK(calls == std::vector<int>{2});
}

TEST_CASE("a callback may unwatch its own watch before its last task", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    FutureTable::WatchId self = 0;
    self = watch_ids(table, {1, 2, 3}, [&](int64_t) {
        ++calls;
        table.unwatch(self);  // as task.wait with --any does
    });
    finish(table, 1);
    CHECK(calls == 1);
    CHECK(table.watch_count() == 0);
    finish(table, 2);
    finish(table, 3);
    CHECK(calls == 1);
}

TEST_CASE("a callback may unwatch its own watch on its last task", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    FutureTable::WatchId self = 0;
    self = watch_ids(table, {1}, [&](int64_t) {
        ++calls;
        table.unwatch(self);
    });
    finish(table, 1);
    CHECK(calls == 1);
    CHECK(table.watch_count() == 0);
}

TEST_CASE("a callback may unwatch another watch of the same task before it is called",
          "[unit][future_table]") {
    FutureTable table;
    std::vector<int> calls;
    FutureTable::WatchId second = 0;
    watch_ids(table, {1}, [&](int64_t) {
        calls.push_back(1);
        table.unwatch(second);
    });
    second = watch_ids(table, {1, 2}, [&](int64_t) { calls.push_back(2); });
    watch_ids(table, {1}, [&](int64_t) { calls.push_back(3); });
    finish(table, 1);
    CHECK(calls == std::vector<int>{1, 3});
    CHECK(table.watch_count() == 0);
    finish(table, 2);
    CHECK(calls == std::vector<int>{1, 3});
}

TEST_CASE("a callback may unwatch a watch of other tasks", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> other_calls;
    auto other = watch_ids(table, {2, 3}, [&](int64_t id) { other_calls.push_back(id); });
    watch_ids(table, {1}, [&](int64_t) { table.unwatch(other); });
    finish(table, 1);
    CHECK(table.watch_count() == 0);
    finish(table, 2);
    finish(table, 3);
    CHECK(other_calls.empty());
}

TEST_CASE("a callback may add a watch, which waits for the next finish", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> late;
    watch_ids(table, {1}, [&](int64_t) {
        watch_ids(table, {1, 2}, [&](int64_t id) { late.push_back(id); });
    });
    finish(table, 1);
    CHECK(late.empty());  // added during task 1's round: not called for it
    CHECK(table.watch_count() == 1);
    finish(table, 2);
    CHECK(late == std::vector<int64_t>{2});
    CHECK(table.watch_count() == 1);  // still waits for 1
}

TEST_CASE("a callback may finish another task re-entrantly", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> seen;
    watch_ids(table, {1, 2}, [&](int64_t id) {
        seen.push_back(id);
        if (id == 1) {
            finish(table, 2);
        }
    });
    finish(table, 1);
    CHECK(seen == std::vector<int64_t>{1, 2});
    CHECK(table.watch_count() == 0);
}

TEST_CASE("a watch listing a task twice ends once that task finished", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> seen;
    watch_ids(table, {7, 7}, [&](int64_t id) { seen.push_back(id); });
    finish(table, 7);
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
    auto id = watch_ids(table, {7, 8, 7}, [&](int64_t) { ++calls; });
    table.unwatch(id);
    CHECK(table.watch_count() == 0);
    finish(table, 7);
    finish(table, 8);
    CHECK(calls == 0);
}

TEST_CASE("a watch listing a task twice still waits for its other tasks", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> seen;
    watch_ids(table, {7, 7, 8}, [&](int64_t id) { seen.push_back(id); });
    finish(table, 7);
    CHECK(table.watch_count() == 1);
    finish(table, 8);
    CHECK(table.watch_count() == 0);
    CHECK(seen.back() == 8);
}

TEST_CASE("many watches on many tasks all end", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    for (int64_t w = 0; w < 100; ++w) {
        watch_ids(table, {w, w + 1, w + 2}, [&](int64_t) { ++calls; });
    }
    for (int64_t t = 0; t < 102; ++t) {
        finish(table, t);
    }
    CHECK(calls == 300);
    CHECK(table.watch_count() == 0);
}

TEST_CASE("every way of finishing ends a wait, and no other change does", "[unit][future_table]") {
    FutureTable table;
    std::vector<int64_t> seen;
    watch_ids(table, {1, 2, 3}, [&](int64_t id) { seen.push_back(id); });
    table.task_changed(task_in(1, TaskState::running));
    table.task_changed(task_in(1, TaskState::pending));  // between two attempts
    CHECK(seen.empty());
    table.task_changed(task_in(1, TaskState::failed));
    table.task_changed(task_in(2, TaskState::cancelled));
    table.task_changed(task_in(3, TaskState::succeeded));
    CHECK(seen == std::vector<int64_t>{1, 2, 3});
    CHECK(table.watch_count() == 0);
}

TEST_CASE("a watch with on_started hears each attempt start, then the finish, with the task itself",
          "[unit][future_table]") {
    FutureTable table;
    std::vector<std::pair<std::string, int>> events;
    table.watch(
        {4}, [&](const Task& t) { events.emplace_back("finished", t.attempts); },
        [&](const Task& t) { events.emplace_back("started", t.attempts); });
    Task t = task_in(4, TaskState::running);
    t.attempts = 1;
    table.task_changed(t);
    t.state = TaskState::pending;  // failed, will retry
    table.task_changed(t);
    t.state = TaskState::running;
    t.attempts = 2;
    table.task_changed(t);
    t.state = TaskState::succeeded;
    table.task_changed(t);
    CHECK(events ==
          std::vector<std::pair<std::string, int>>{{"started", 1}, {"started", 2}, {"finished", 2}});
    CHECK(table.watch_count() == 0);
    t.state = TaskState::running;  // nobody listens any more
    table.task_changed(t);
    CHECK(events.size() == 3);
}

TEST_CASE("a watch without on_started is not called when its task starts", "[unit][future_table]") {
    FutureTable table;
    int calls = 0;
    watch_ids(table, {5}, [&](int64_t) { ++calls; });
    table.task_changed(task_in(5, TaskState::running));
    CHECK(calls == 0);
    CHECK(table.watch_count() == 1);
}

TEST_CASE("an on_started callback may unwatch its own watch and others", "[unit][future_table]") {
    FutureTable table;
    std::vector<int> calls;
    FutureTable::WatchId first = 0;
    FutureTable::WatchId second = 0;
    first = table.watch(
        {6}, [&](const Task&) { calls.push_back(-1); },
        [&](const Task&) {
            calls.push_back(1);
            table.unwatch(first);
            table.unwatch(second);
        });
    second = table.watch(
        {6}, [&](const Task&) { calls.push_back(-2); }, [&](const Task&) { calls.push_back(2); });
    table.task_changed(task_in(6, TaskState::running));
    CHECK(calls == std::vector<int>{1});
    CHECK(table.watch_count() == 0);
    finish(table, 6);
    CHECK(calls == std::vector<int>{1});
}

TEST_CASE("a finish is told through the journal barrier as groupable, an answer after the journal as not",
          "[unit][future_table]") {
    FutureTable table;
    std::vector<std::pair<std::function<void()>, bool>> barriers;
    table.set_journal_barrier(
        [&](std::function<void()> fn, bool groupable) { barriers.emplace_back(std::move(fn), groupable); });
    std::vector<int64_t> seen;
    watch_ids(table, {1}, [&](int64_t id) { seen.push_back(id); });
    finish(table, 1);
    REQUIRE(barriers.size() == 1);
    CHECK(barriers[0].second);
    CHECK(seen.empty());  // told once committed
    barriers[0].first();
    CHECK(seen == std::vector<int64_t>{1});
    bool answered = false;
    table.after_journal([&] { answered = true; });
    REQUIRE(barriers.size() == 2);
    CHECK_FALSE(barriers[1].second);
    barriers[1].first();
    CHECK(answered);
}
