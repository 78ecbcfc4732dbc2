#include <mpctl/daemon/commands/task_filter.hpp>

namespace mpctl::daemon {

using nlohmann::json;

TaskFilter read_task_filter(const proto::Params& p) {
    TaskFilter f;
    if (p.has("state")) {
        json s = p.required<json>("state");
        std::vector<std::string> names =
            s.is_array() ? proto::Params::convert<std::vector<std::string>>(s, "params.state")
                         : std::vector<std::string>{proto::Params::convert<std::string>(s, "params.state")};
        for (const auto& n : names) {
            auto st = proto::parse_task_state(n);
            if (!st) {
                proto::throw_invalid_params("params.state: unknown state \"" + n +
                                            "\" (pending, running, succeeded, failed, cancelled)");
            }
            f.states.insert(*st);
        }
    }
    auto add_label = [&](const std::string& text) {
        auto eq = text.find('=');
        if (eq == std::string::npos) {
            f.labels[text] = std::nullopt;
        } else {
            f.labels[text.substr(0, eq)] = text.substr(eq + 1);
        }
    };
    if (p.has("label")) {
        add_label(p.required<std::string>("label"));
    }
    if (p.has("labels")) {
        for (const auto& l : p.required<std::vector<std::string>>("labels")) {
            add_label(l);
        }
    }
    f.pool = p.optional<std::string>("pool");
    f.name = p.optional<std::string>("name");
    return f;
}

}  // namespace mpctl::daemon
