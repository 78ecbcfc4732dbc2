#include <algorithm>
#include <cctype>

#include <mpctl/daemon/slurm/pool_backend.hpp>

namespace mpctl::daemon::slurm {

common::Result<std::optional<PoolSettings>> apply_backend_keys(const BackendKeys& keys,
                                                               std::optional<PoolSettings> current) {
    std::optional<PoolSettings> settings = std::move(current);
    if (keys.backend) {
        if (*keys.backend == "local") {
            settings.reset();
        } else if (*keys.backend == "slurm") {
            if (!settings) {
                settings.emplace();
            }
        } else {
            return common::plain_error("backend: \"local\" or \"slurm\"");
        }
    }
    if ((keys.partition || keys.account || keys.slurm_args) && !settings) {
        return common::plain_error(
            "backend: partition, account and slurm_args are for a Slurm pool (backend \"slurm\")");
    }
    if (!settings) {
        return settings;
    }
    auto name = [](const std::string& v) {
        return !v.empty() && v.size() <= 128 && std::all_of(v.begin(), v.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '+' ||
                   c == '-';
        });
    };
    for (auto [key, value, into] : {std::tuple{"partition", &keys.partition, &settings->partition},
                                    std::tuple{"account", &keys.account, &settings->account}}) {
        if (!*value) {
            continue;
        }
        if (!name(**value)) {
            return common::plain_error(std::string(key) +
                                       ": a Slurm name, 1-128 of letters, digits, '_', '.', '+' and '-'");
        }
        *into = **value;
    }
    if (keys.slurm_args) {
        const auto& args = *keys.slurm_args;
        if (args.size() > 64 || !std::all_of(args.begin(), args.end(),
                                             [](const std::string& a) { return a.starts_with("--"); })) {
            return common::plain_error(
                "slurm_args: up to 64 sbatch options, each a string starting with -- (\"--qos=low\")");
        }
        for (const auto& a : args) {
            if (auto owned = owned_option(a)) {
                return common::plain_error("slurm_args: " + *owned +
                                           " is mpctl's to set (it tracks each task's job by them)");
            }
        }
        settings->args = args;
    }
    return settings;
}

}  // namespace mpctl::daemon::slurm
