#include <malloc.h>

#include <mpctl/common/heap.hpp>

namespace mpctl::common {

void trim_heap() {
    ::malloc_trim(0);
}

}  // namespace mpctl::common
