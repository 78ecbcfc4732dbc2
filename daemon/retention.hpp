#pragma once
// Retention: the config's keep_finished (forget finished tasks older than this) and keep_finished_max (and
// the oldest past this many), applied as
// `mpctl clean` would: rows first, then memory, files in the background. A sweep runs at start and once a
// minute, walks the task table once (a few milliseconds for 100,000 tasks) and forgets at most
// k_max_per_sweep tasks, so that one sweep never holds the loop long; what is left goes at the next. Loop
// thread only.

#include <cstddef>
#include <cstdint>
#include <optional>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

namespace mpctl::daemon {

class Scheduler;
class Store;

class Retention {
  public:
    static constexpr size_t k_max_per_sweep = 10000;

    // Nothing is ever swept when both limits are nullopt.
    Retention(asio::io_context& io, Store& store, Scheduler& scheduler, std::optional<double> keep_finished_s,
              std::optional<size_t> keep_finished_max);

    void start();
    void stop();
    // Sweeps now (tests; and after start).
    void sweep();

  private:
    void arm();

    asio::steady_timer timer_;
    Store& store_;
    Scheduler& scheduler_;
    std::optional<double> keep_finished_s_;
    std::optional<size_t> keep_finished_max_;
    bool sweeping_ = false;  // a sweep's delete is being committed
    bool stopped_ = false;
};

}  // namespace mpctl::daemon
