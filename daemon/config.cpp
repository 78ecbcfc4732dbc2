#include <sys/stat.h>

#include <toml++/toml.h>

#include <mpctl/common/time.hpp>
#include <mpctl/daemon/config.hpp>
#include <mpctl/proto/task_spec.hpp>

namespace mpctl::daemon {

std::optional<Durability> parse_durability(const std::string& text) {
    if (text == "full") {
        return Durability::full;
    }
    if (text == "normal") {
        return Durability::normal;
    }
    return std::nullopt;
}

const char* to_string(Durability d) {
    return d == Durability::full ? "full" : "normal";
}

bool valid_log_level(const std::string& level) {
    return level == "trace" || level == "debug" || level == "info" || level == "warn" || level == "error";
}

common::Result<void> load_config_file(const std::string& path, bool required, DaemonConfig& config) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (required) {
            return common::sys_error("config file " + path);
        }
        return {};
    }
    toml::table table;
    try {
        table = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        return common::plain_error("config file " + path + ": " + std::string(e.description()) + " at line " +
                                       std::to_string(e.source().begin.line),
                                   common::Errc::invalid);
    }
    auto bad = [&](const std::string& key, const std::string& want) {
        return common::plain_error("config file " + path + ": " + key + " must be " + want,
                                   common::Errc::invalid);
    };
    int file_workers = 0;
    std::map<std::string, int> file_pools;
    for (auto&& [key, node] : table) {
        std::string k(key.str());
        if (k == "workers") {
            auto v = node.value<int64_t>();
            if (!v || *v < 1 || *v > 100000) {
                return bad(k, "an integer from 1 to 100000");
            }
            config.workers = static_cast<int>(*v);
            file_workers = config.workers;
        } else if (k == "log_level") {
            auto v = node.value<std::string>();
            if (!v || !valid_log_level(*v)) {
                return bad(k, "\"trace\", \"debug\", \"info\", \"warn\" or \"error\"");
            }
            config.log_level = *v;
        } else if (k == "durability") {
            auto v = node.value<std::string>();
            auto d = v ? parse_durability(*v) : std::nullopt;
            if (!d) {
                return bad(k, "\"full\" or \"normal\"");
            }
            config.durability = *d;
        } else if (k == "kill_after") {
            auto v = node.value<double>();
            if (!v || *v < 0) {
                return bad(k, "a number of seconds");
            }
            config.kill_after_s = *v;
        } else if (k == "max_output") {
            auto v = node.value<int64_t>();
            if (!v || *v < 0) {
                return bad(k, "a number of bytes");
            }
            config.max_output = static_cast<uint64_t>(*v);
        } else if (k == "shm_max_size") {
            auto v = node.value<int64_t>();
            if (!v || *v < 1) {
                return bad(k, "a number of bytes (1 or more)");
            }
            config.shm_max_size = static_cast<uint64_t>(*v);
        } else if (k == "manager_max_bytes") {
            auto v = node.value<int64_t>();
            if (!v || *v < 1) {
                return bad(k, "a number of bytes (1 or more)");
            }
            config.manager_max_bytes = static_cast<uint64_t>(*v);
        } else if (k == "listen") {
            // "tcp://HOST:PORT", or an array of them.
            config.listen.clear();
            if (auto one = node.value<std::string>()) {
                config.listen.push_back(*one);
            } else if (const auto* many = node.as_array()) {
                for (const auto& entry : *many) {
                    auto url = entry.value<std::string>();
                    if (!url) {
                        return bad(k, "\"tcp://HOST:PORT\" or an array of them");
                    }
                    config.listen.push_back(*url);
                }
            } else {
                return bad(k, "\"tcp://HOST:PORT\" or an array of them");
            }
        } else if (k == "max_connections") {
            auto v = node.value<int64_t>();
            if (!v || *v < 1 || *v > 1000000) {
                return bad(k, "an integer from 1 to 1000000");
            }
            config.max_connections = static_cast<size_t>(*v);
        } else if (k == "keep_finished") {
            // "7d", "12h", or a number of seconds.
            double seconds = -1;
            if (auto text = node.value<std::string>()) {
                seconds = common::parse_duration_seconds(*text);
            } else if (auto number = node.value<double>()) {
                seconds = *number;
            }
            if (!(seconds >= 0 && seconds <= 3153600000.0)) {
                return bad(k, "a duration such as \"7d\", \"12h\" or a number of seconds");
            }
            config.keep_finished_s = seconds;
        } else if (k == "keep_finished_max") {
            auto v = node.value<int64_t>();
            if (!v || *v < 0) {
                return bad(k, "a number of tasks (0 or more)");
            }
            config.keep_finished_max = static_cast<size_t>(*v);
        } else if (k == "pools") {
            const auto* pools = node.as_table();
            if (pools == nullptr) {
                return bad(k, "a table of [pools.NAME] tables");
            }
            for (auto&& [name, pool] : *pools) {
                std::string n(name.str());
                const auto* t = pool.as_table();
                std::optional<int64_t> w;
                if (t != nullptr) {
                    w = (*t)["workers"].value<int64_t>();
                }
                if (!proto::valid_pool_name(n) || !w || *w < 1 || *w > 100000) {
                    return bad("pools." + n,
                               "a table with workers = 1..100000 (and a name of [A-Za-z0-9_.-])");
                }
                config.pools[n] = static_cast<int>(*w);
                file_pools[n] = static_cast<int>(*w);
            }
        } else {
            return common::plain_error("config file " + path + ": unknown setting \"" + k + "\"",
                                       common::Errc::invalid);
        }
    }
    config.from_file = ReloadableSettings{file_workers, config.log_level, std::move(file_pools)};
    return {};
}

}  // namespace mpctl::daemon
