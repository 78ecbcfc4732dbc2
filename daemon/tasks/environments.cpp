#include <functional>

#include <mpctl/daemon/tasks/environments.hpp>

namespace mpctl::daemon {

size_t Environments::hash_of(const proto::Environment& env) {
    std::hash<std::string> h;
    size_t seed = env.size();
    for (const auto& [k, v] : env) {
        seed ^= h(k) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
        seed ^= h(v) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
    }
    return seed;
}

Environments::Entry Environments::intern(const std::shared_ptr<const proto::Environment>& env, bool& is_new) {
    is_new = false;
    size_t h = hash_of(*env);
    auto range = by_hash_.equal_range(h);
    for (auto it = range.first; it != range.second; ++it) {
        if (*it->second.env == *env) {
            return it->second;
        }
    }
    // Unused entries pile up when every submit brings a new environment; sweep now and then.
    if (++interned_since_collect_ > 1024) {
        collect();
    }
    is_new = true;
    Entry e{next_id_++, env};
    by_hash_.emplace(h, e);
    return e;
}

void Environments::restore(int64_t id, std::shared_ptr<const proto::Environment> env) {
    size_t h = hash_of(*env);  // before env is moved from
    by_hash_.emplace(h, Entry{id, std::move(env)});
    set_next_id(id + 1);
}

size_t Environments::collect() {
    interned_since_collect_ = 0;
    return std::erase_if(by_hash_, [](const auto& item) { return item.second.env.use_count() == 1; });
}

}  // namespace mpctl::daemon
