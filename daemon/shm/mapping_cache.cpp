#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <mpctl/common/shm.hpp>
#include <mpctl/daemon/shm/mapping_cache.hpp>

namespace mpctl::daemon {

MappingCache::~MappingCache() {
    timers_.cancel(sweep_timer_);
    for (auto& [name, e] : entries_) {
        unmap(e);
    }
}

void MappingCache::unmap(Entry& e) {
    if (e.data != nullptr) {
        ::munmap(e.data, e.size);
        e.data = nullptr;
    }
}

common::Result<MappingCache::View> MappingCache::map(const std::string& name, bool writable) {
    auto it = entries_.find(name);
    if (it != entries_.end()) {
        struct stat now {};
        Entry& e = it->second;
        if (::stat(common::shm::path_of(name).c_str(), &now) == 0 && now.st_dev == e.dev &&
            now.st_ino == e.ino && static_cast<size_t>(now.st_size) == e.size && (e.writable || !writable)) {
            e.used = true;
            return View{e.data, e.size};
        }
        unmap(e);
        entries_.erase(it);
    }
    auto fd = common::shm::open_segment(name, writable ? O_RDWR : O_RDONLY);
    if (!fd) {
        return std::unexpected(fd.error());
    }
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) {
        return common::sys_error("stat " + common::shm::path_of(name));
    }
    Entry e{st.st_dev, st.st_ino, static_cast<size_t>(st.st_size), writable, nullptr, true};
    if (e.size == 0) {
        return View{};  // nothing to map, and not worth keeping
    }
    void* at = ::mmap(nullptr, e.size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd->get(), 0);
    if (at == MAP_FAILED) {
        return common::sys_error("mmap " + common::shm::path_of(name));
    }
    e.data = static_cast<char*>(at);
    if (entries_.size() >= k_max_entries) {
        // Full: the first by name goes. Rare enough (64 lists in use within a second) not to keep an order.
        unmap(entries_.begin()->second);
        entries_.erase(entries_.begin());
    }
    View v{e.data, e.size};
    entries_.emplace(name, e);
    arm_sweep();
    return v;
}

void MappingCache::forget(const std::string& name) {
    if (auto it = entries_.find(name); it != entries_.end()) {
        unmap(it->second);
        entries_.erase(it);
    }
}

void MappingCache::sweep() {
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second.used) {
            it->second.used = false;
            ++it;
        } else {
            unmap(it->second);
            it = entries_.erase(it);
        }
    }
    arm_sweep();
}

void MappingCache::arm_sweep() {
    if (sweep_timer_ == 0 && !entries_.empty()) {
        sweep_timer_ = timers_.start(k_sweep_every, [this] {
            sweep_timer_ = 0;
            sweep();
        });
    }
}

}  // namespace mpctl::daemon
