#include <sys/stat.h>

#include <toml++/toml.h>

#include <mpctl/common/byte_size.hpp>
#include <mpctl/common/suggest.hpp>
#include <mpctl/common/time.hpp>
#include <mpctl/daemon/config.hpp>
#include <mpctl/daemon/slurm/pool_backend.hpp>
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

namespace {

// Every top-level key, for "did you mean": keep in step with load_config_file.
const std::vector<std::string>& known_keys() {
    static const std::vector<std::string> keys{"workers",
                                               "log_level",
                                               "log_max_size",
                                               "log_keep",
                                               "durability",
                                               "kill_after",
                                               "max_output",
                                               "max_connections",
                                               "keep_finished",
                                               "keep_finished_max",
                                               "shm_max_size",
                                               "manager_max_bytes",
                                               "listen",
                                               "socket",
                                               "state_dir",
                                               "group",
                                               "supervise",
                                               "pools",
                                               "slurm_shared_check"};
    return keys;
}

// What an error of the file reads: "config file PATH, line N: WHAT". Line 0 is toml++'s "unknown".
common::Error file_error(const std::string& path, const toml::source_region& where, const std::string& what) {
    std::string at = "config file " + path;
    if (where.begin.line > 0) {
        at += ", line " + std::to_string(where.begin.line);
    }
    return common::Error{common::Errc::invalid, 0, at + ": " + what};
}

std::string unknown_key(const std::string& key, const std::vector<std::string>& known) {
    std::string what = "unknown setting \"" + key + "\"";
    if (auto near = common::nearest_word(key, known)) {
        what += " (did you mean \"" + *near + "\"?)";
    }
    return what;
}

// A path the daemon uses whatever its working directory (daemonized, it is "/").
std::optional<std::string> absolute_path_value(const toml::node& node) {
    auto v = node.value<std::string>();
    if (!v || !v->starts_with('/')) {
        return std::nullopt;
    }
    return v;
}

}  // namespace

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
        return std::unexpected(file_error(path, e.source(), std::string(e.description())));
    }
    const toml::node* at = nullptr;  // the value being read, for the line of an error
    auto bad = [&](const std::string& key, const std::string& want) {
        return std::unexpected(file_error(path, at->source(), key + " must be " + want));
    };
    int file_workers = 0;
    std::map<std::string, int> file_pools;
    for (auto&& [key, node] : table) {
        std::string k(key.str());
        at = &node;
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
        } else if (k == "log_max_size") {
            // 10485760 or "10M".
            std::optional<uint64_t> v;
            if (auto number = node.value<int64_t>(); number && *number >= 0) {
                v = static_cast<uint64_t>(*number);
            } else if (auto text = node.value<std::string>()) {
                v = common::parse_byte_size(*text);
            }
            if (!v || (*v != 0 && *v < k_min_log_max_size)) {
                return bad(k,
                           "a number of bytes such as 10485760 or \"10M\", 1024 or more (0: never rotate)");
            }
            config.log_max_size = *v;
        } else if (k == "log_keep") {
            auto v = node.value<int64_t>();
            if (!v || *v < 0 || *v > k_max_log_keep) {
                return bad(k, "a number of files from 0 to " + std::to_string(k_max_log_keep));
            }
            config.log_keep = static_cast<int>(*v);
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
                    at = &entry;
                    auto url = entry.value<std::string>();
                    if (!url) {
                        return bad(k, "\"tcp://HOST:PORT\" or an array of them");
                    }
                    config.listen.push_back(*url);
                }
            } else {
                return bad(k, "\"tcp://HOST:PORT\" or an array of them");
            }
        } else if (k == "socket") {
            auto v = absolute_path_value(node);
            if (!v) {
                return bad(k, "an absolute path");
            }
            config.socket_path = *v;
        } else if (k == "state_dir") {
            auto v = absolute_path_value(node);
            if (!v) {
                return bad(k, "an absolute path");
            }
            config.state_dir = *v;
        } else if (k == "slurm_shared_check") {
            auto v = node.value<std::string>();
            if (!v || v->find('\n') != std::string::npos) {
                return bad(k, "a shell command (given the state dir as \"$1\")");
            }
            config.slurm_shared_check = *v;
        } else if (k == "group") {
            auto v = node.value<std::string>();
            if (!v || v->empty() || v->find_first_of(":\n") != std::string::npos) {
                return bad(k, "the name of a group");
            }
            config.group = *v;
        } else if (k == "supervise") {
            auto v = node.value<bool>();
            if (!v) {
                return bad(k, "true or false");
            }
            config.supervise = *v;
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
                const std::string want = "a table with workers = 1..100000 (and a name of [A-Za-z0-9_.-])";
                at = &pool;
                const auto* t = pool.as_table();
                if (t == nullptr || !proto::valid_pool_name(n)) {
                    return bad("pools." + n, want);
                }
                std::optional<int64_t> w;
                slurm::BackendKeys backend;
                for (auto&& [pool_key, value] : *t) {
                    std::string pk(pool_key.str());
                    at = &value;
                    if (pk == "workers") {
                        w = value.value<int64_t>();
                    } else if (pk == "backend" || pk == "partition" || pk == "account") {
                        auto v = value.value<std::string>();
                        if (!v) {
                            return bad("pools." + n + "." + pk, "a string");
                        }
                        (pk == "backend"     ? backend.backend
                         : pk == "partition" ? backend.partition
                                             : backend.account) = *v;
                    } else if (pk == "slurm_args") {
                        const auto* list = value.as_array();
                        std::vector<std::string> args;
                        for (size_t i = 0; list != nullptr && i < list->size(); ++i) {
                            if (auto a = (*list)[i].value<std::string>()) {
                                args.push_back(*a);
                            }
                        }
                        if (list == nullptr || args.size() != list->size()) {
                            return bad("pools." + n + ".slurm_args", "an array of strings");
                        }
                        backend.slurm_args = std::move(args);
                    } else {
                        std::vector<std::string> known;
                        for (const char* known_key :
                             {"workers", "backend", "partition", "account", "slurm_args"}) {
                            known.push_back("pools." + n + "." + known_key);
                        }
                        return std::unexpected(
                            file_error(path, pool_key.source(), unknown_key("pools." + n + "." + pk, known)));
                    }
                }
                if (!w || *w < 1 || *w > 100000) {
                    return bad("pools." + n, want);
                }
                // The same rules as pool.set's (slurm/pool_backend.hpp).
                auto settings = slurm::apply_backend_keys(backend, std::nullopt);
                if (!settings) {
                    return std::unexpected(
                        file_error(path, pool.source(), "pools." + n + "." + settings.error().message()));
                }
                if (*settings && n == proto::k_default_pool) {
                    return std::unexpected(
                        file_error(path, pool.source(),
                                   "pools." + n + ".backend: the default pool runs its tasks here"));
                }
                if (*settings) {
                    config.pool_backends[n] = **settings;
                }
                config.pools[n] = static_cast<int>(*w);
                file_pools[n] = static_cast<int>(*w);
            }
        } else {
            return std::unexpected(file_error(path, key.source(), unknown_key(k, known_keys())));
        }
    }
    config.from_file = ReloadableSettings{file_workers, config.log_level, std::move(file_pools)};
    return {};
}

}  // namespace mpctl::daemon
