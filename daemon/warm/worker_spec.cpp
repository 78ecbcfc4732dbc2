#include <mpctl/daemon/warm/worker_spec.hpp>

namespace mpctl::daemon {

nlohmann::json to_json(const WorkerSpec& spec) {
    return {{"argv", spec.argv},
            {"max_tasks_per_worker", spec.max_tasks},
            {"worker_idle_timeout", spec.idle_timeout_s}};
}

std::optional<WorkerSpec> worker_spec_from_json(const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("argv") || !j["argv"].is_array() || j["argv"].empty()) {
        return std::nullopt;
    }
    WorkerSpec spec;
    for (const auto& word : j["argv"]) {
        if (!word.is_string()) {
            return std::nullopt;
        }
        spec.argv.push_back(word.get<std::string>());
    }
    if (auto it = j.find("max_tasks_per_worker"); it != j.end() && it->is_number_integer()) {
        spec.max_tasks = std::max(0, it->get<int>());
    }
    if (auto it = j.find("worker_idle_timeout"); it != j.end() && it->is_number()) {
        spec.idle_timeout_s = std::max(0.0, it->get<double>());
    }
    return spec;
}

}  // namespace mpctl::daemon
