#pragma once
// The process's heap: giving back to the system what a burst of work freed.

namespace mpctl::common {

// Returns the heap's free pages to the system (malloc_trim(3)). glibc keeps the pages of blocks freed below
// the top of its heap, so the memory a large request needed only for a moment (a batch of ten thousand
// tasks is about 20 MB of parsed JSON, specs and journal rows until its commit) would stay resident for
// the process's life. It walks the free blocks: a fraction of a millisecond for a heap of 60 MB.
void trim_heap();

}  // namespace mpctl::common
