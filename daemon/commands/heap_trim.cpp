#include <mpctl/common/heap.hpp>
#include <mpctl/daemon/commands/heap_trim.hpp>

namespace mpctl::daemon {

void HeapTrim::after_burst() {
    timer_.expires_after(k_quiet);  // cancels a wait already armed: the burst goes on
    timer_.async_wait([](const std::error_code& ec) {
        if (!ec) {
            common::trim_heap();
        }
    });
}

}  // namespace mpctl::daemon
