#include <chrono>
#include <thread>

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <mpctl/daemon/tasks/timers.hpp>

using namespace mpctl::daemon;
using namespace std::chrono_literals;

TEST_CASE("a timer runs its callback once after its delay", "[unit][timers]") {
    asio::io_context io;
    AsioTimers timers(io);
    int runs = 0;
    timers.start(1ms, [&] { ++runs; });
    io.run_for(10s);  // returns once the timer, the only work, is done
    CHECK(runs == 1);
}

TEST_CASE("a timer cancelled before its delay never runs", "[unit][timers]") {
    asio::io_context io;
    AsioTimers timers(io);
    bool ran = false;
    TimerId id = timers.start(50ms, [&] { ran = true; });
    timers.cancel(id);
    io.run_for(10s);
    CHECK_FALSE(ran);
    timers.cancel(id);  // again, and an id that never was: no-ops
    timers.cancel(12345);
}

TEST_CASE("a timer cancelled after it expired but before its callback ran does not run", "[unit][timers]") {
    // Both expire before the loop looks, so Asio queues both handlers in one turn: the first cancels the
    // second, whose handler is already queued with success (a task's timeout cancelled by its exit in the
    // same turn, say). Cancelling must still mean never.
    asio::io_context io;
    AsioTimers timers(io);
    bool second_ran = false;
    TimerId second = 0;
    bool first_ran = false;
    timers.start(1ms, [&] {
        first_ran = true;
        timers.cancel(second);
    });
    second = timers.start(1ms, [&] { second_ran = true; });
    std::this_thread::sleep_for(20ms);
    io.run_for(10s);
    CHECK(first_ran);
    CHECK_FALSE(second_ran);
}

TEST_CASE("a callback may start a new timer, and cancelling the one that ran is a no-op", "[unit][timers]") {
    asio::io_context io;
    AsioTimers timers(io);
    int runs = 0;
    TimerId first = 0;
    first = timers.start(1ms, [&] {
        ++runs;
        timers.cancel(first);
        timers.start(1ms, [&] { ++runs; });
    });
    io.run_for(10s);
    CHECK(runs == 2);
}
