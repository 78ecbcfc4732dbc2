#include <mpctl/daemon/commands/task_text.hpp>
#include <mpctl/proto/task_status.hpp>

namespace mpctl::daemon {

void append_statuses(const StatusView& view, const std::vector<const Task*>& tasks, std::string& out) {
    out.push_back('[');
    for (size_t i = 0; i < tasks.size(); ++i) {
        if (i > 0) {
            out.push_back(',');
        }
        out += view.text(*tasks[i]);
    }
    out.push_back(']');
}

void append_ids(const std::vector<int64_t>& ids, std::string& out) {
    out.push_back('[');
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) {
            out.push_back(',');
        }
        out += std::to_string(ids[i]);
    }
    out.push_back(']');
}

std::string tasks_text(const StatusView& view, const std::vector<const Task*>& tasks) {
    std::string out = R"({"tasks":)";
    append_statuses(view, tasks, out);
    out.push_back('}');
    return out;
}

void notify_completed(const StatusView& view, Responder& responder, const Task& task, bool brief) {
    std::string line = R"({"jsonrpc":"2.0","method":"task.completed","params":{"task":)";
    line += brief ? proto::to_brief_json_text(view.status(task)) : view.text(task);
    line += "}}\n";
    responder.notify_line(std::move(line));
}

}  // namespace mpctl::daemon
