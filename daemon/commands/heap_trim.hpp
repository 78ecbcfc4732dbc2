#pragma once
// HeapTrim: gives the memory of a burst of large submissions back to the system once the burst is over
// (common/heap.hpp says why it would stay). Debounced: each large batch pushes the trim k_quiet later, so
// a stream of batches (a fill of a million tasks, a map's start) reuses the memory it freed instead of
// faulting it in again after every trim, and the trim comes once, when the stream stops. Loop thread only.

#include <chrono>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

namespace mpctl::daemon {

class HeapTrim {
  public:
    static constexpr std::chrono::milliseconds k_quiet{200};

    explicit HeapTrim(asio::io_context& io) : timer_(io) {}

    // A large batch was answered: trim once no other has come for k_quiet.
    void after_burst();

  private:
    asio::steady_timer timer_;
};

}  // namespace mpctl::daemon
