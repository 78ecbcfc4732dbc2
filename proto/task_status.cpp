#include <mpctl/common/time.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/params.hpp>
#include <mpctl/proto/task_status.hpp>

namespace mpctl::proto {

using nlohmann::json;

std::string_view to_string(TaskState s) {
    switch (s) {
        case TaskState::pending:
            return "pending";
        case TaskState::running:
            return "running";
        case TaskState::succeeded:
            return "succeeded";
        case TaskState::failed:
            return "failed";
        case TaskState::cancelled:
            return "cancelled";
    }
    return "pending";
}

std::string_view to_string(FailReason r) {
    switch (r) {
        case FailReason::none:
            return "";
        case FailReason::exit:
            return "exit";
        case FailReason::signal:
            return "signal";
        case FailReason::timeout:
            return "timeout";
        case FailReason::spawn:
            return "spawn";
        case FailReason::lost:
            return "lost";
        case FailReason::dependency:
            return "dependency";
    }
    return "";
}

std::optional<TaskState> parse_task_state(std::string_view s) {
    for (auto st : {TaskState::pending, TaskState::running, TaskState::succeeded, TaskState::failed,
                    TaskState::cancelled}) {
        if (to_string(st) == s) {
            return st;
        }
    }
    return std::nullopt;
}

std::optional<FailReason> parse_fail_reason(std::string_view s) {
    for (auto r : {FailReason::exit, FailReason::signal, FailReason::timeout, FailReason::spawn,
                   FailReason::lost, FailReason::dependency}) {
        if (to_string(r) == s) {
            return r;
        }
    }
    return std::nullopt;
}

std::optional<int64_t> TaskStatus::duration_ms() const {
    if (!started_at_ms) {
        return std::nullopt;
    }
    int64_t end = finished_at_ms ? *finished_at_ms : common::now_unix_ms();
    return end - *started_at_ms;
}

namespace {

std::optional<int64_t> time_field(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        return std::nullopt;
    }
    if (!it->is_string()) {
        throw_invalid_params(std::string("status.") + key + ": expected an RFC 3339 time");
    }
    auto ms = common::parse_rfc3339_ms(it->get<std::string>());
    if (!ms) {
        throw_invalid_params(std::string("status.") + key + ": expected an RFC 3339 time");
    }
    return ms;
}

}  // namespace

json to_json(const TaskStatus& s) {
    // One writer of the object: the text form, parsed back (the hot paths send the text as it is).
    return parse_json_text(to_json_text(s));
}

namespace {

// "key": after a '{', or ,"key": after a value.
void append_key(std::string& out, const char* key) {
    if (out.back() != '{') {
        out.push_back(',');
    }
    out.push_back('"');
    out += key;
    out += "\":";
}

template <class T>
void append_int(std::string& out, const std::optional<T>& v) {
    out += v ? std::to_string(*v) : std::string("null");
}

void append_string_or_null(std::string& out, const std::optional<std::string>& v) {
    if (v) {
        append_json_string(out, *v);
    } else {
        out += "null";
    }
}

void append_words(std::string& out, const std::vector<std::string>& words) {
    out.push_back('[');
    for (size_t i = 0; i < words.size(); ++i) {
        if (i > 0) {
            out.push_back(',');
        }
        append_json_string(out, words[i]);
    }
    out.push_back(']');
}

void append_time(std::string& out, const std::optional<int64_t>& ms) {
    if (ms) {
        out.push_back('"');
        out += common::format_rfc3339_ms(*ms);
        out.push_back('"');
    } else {
        out += "null";
    }
}

// The members the whole status and the brief one share: how the task ended (state, reason, exit_code,
// signal), and its result, which only a task with one has.
void append_outcome(std::string& out, const TaskStatus& s) {
    append_key(out, "state");
    append_json_string(out, to_string(s.state));
    append_key(out, "reason");
    if (s.reason == FailReason::none) {
        out += "null";
    } else {
        append_json_string(out, to_string(s.reason));
    }
    append_key(out, "exit_code");
    append_int(out, s.exit_code);
    append_key(out, "signal");
    append_int(out, s.signal);
}

void append_result(std::string& out, const TaskStatus& s) {
    if (s.result) {
        append_key(out, "result");
        append_json_string(out, *s.result);
    }
}

}  // namespace

std::string to_json_text(const TaskStatus& s) {
    std::string out;
    out.reserve(768);
    out.push_back('{');
    append_key(out, "id");
    out += std::to_string(s.id);
    append_key(out, "name");
    append_string_or_null(out, s.name);
    append_outcome(out, s);
    append_key(out, "argv");
    if (s.argv) {
        append_words(out, *s.argv);
    } else {
        out += "null";
    }
    append_key(out, "shell");
    append_string_or_null(out, s.shell);
    append_key(out, "cwd");
    append_json_string(out, s.cwd);
    append_key(out, "pool");
    append_json_string(out, s.pool);
    append_key(out, "priority");
    out += std::to_string(s.priority);
    append_key(out, "labels");
    out.push_back('{');
    bool first = true;
    for (const auto& [k, v] : s.labels) {
        if (!first) {
            out.push_back(',');
        }
        first = false;
        append_json_string(out, k);
        out.push_back(':');
        append_json_string(out, v);
    }
    out.push_back('}');
    append_key(out, "after");
    out.push_back('[');
    for (size_t i = 0; i < s.after.size(); ++i) {
        out += (i > 0 ? "," : "") + std::to_string(s.after[i]);
    }
    out.push_back(']');
    append_key(out, "submitted_at");
    append_time(out, s.submitted_at_ms);
    append_key(out, "started_at");
    append_time(out, s.started_at_ms);
    append_key(out, "finished_at");
    append_time(out, s.finished_at_ms);
    append_key(out, "duration_ms");
    append_int(out, s.duration_ms());
    append_key(out, "attempts");
    out += std::to_string(s.attempts);
    append_key(out, "retries");
    out += std::to_string(s.retries);
    append_key(out, "timeout");
    out += s.timeout_s ? json(*s.timeout_s).dump() : std::string("null");  // doubles as nlohmann writes them
    append_key(out, "pid");
    append_int(out, s.pid);
    append_key(out, "stdout_path");
    append_json_string(out, s.stdout_path);
    append_key(out, "stderr_path");
    append_json_string(out, s.stderr_path);
    append_key(out, "error");
    append_string_or_null(out, s.error);
    append_key(out, "stages");
    if (s.stages) {
        out.push_back('[');
        for (size_t i = 0; i < s.stages->size(); ++i) {
            const StageStatus& st = (*s.stages)[i];
            out += i > 0 ? ",{" : "{";
            append_key(out, "argv");
            append_words(out, st.argv);
            append_key(out, "pid");
            append_int(out, st.pid);
            append_key(out, "state");
            append_json_string(out, st.state);
            append_key(out, "exit_code");
            append_int(out, st.exit_code);
            append_key(out, "signal");
            append_int(out, st.signal);
            append_key(out, "stderr_path");
            append_json_string(out, st.stderr_path);
            out.push_back('}');
        }
        out.push_back(']');
    } else {
        out += "null";
    }
    append_key(out, "truncated");
    out += s.truncated ? "true" : "false";
    append_key(out, "backend");
    append_json_string(out, s.backend);
    append_key(out, "backend_id");
    append_string_or_null(out, s.backend_id);
    append_result(out, s);
    out.push_back('}');
    return out;
}

std::string to_brief_json_text(const TaskStatus& s) {
    std::string out = "{\"id\":" + std::to_string(s.id);
    append_outcome(out, s);
    append_key(out, "error");
    append_string_or_null(out, s.error);
    append_result(out, s);
    out.push_back('}');
    return out;
}

TaskStatus status_from_json(const json& value) {
    Params p(value, "status");
    TaskStatus s;
    s.id = p.required<int64_t>("id");
    s.name = p.optional<std::string>("name");
    auto state = parse_task_state(p.required<std::string>("state"));
    if (!state) {
        throw_invalid_params("status.state: unknown state");
    }
    s.state = *state;
    if (auto reason = p.optional<std::string>("reason")) {
        auto r = parse_fail_reason(*reason);
        if (!r) {
            throw_invalid_params("status.reason: unknown reason");
        }
        s.reason = *r;
    }
    s.exit_code = p.optional<int>("exit_code");
    s.signal = p.optional<int>("signal");
    s.argv = p.optional<std::vector<std::string>>("argv");
    s.shell = p.optional<std::string>("shell");
    s.cwd = p.get_or<std::string>("cwd", "");
    s.pool = p.get_or<std::string>("pool", "");
    s.priority = p.get_or<int>("priority", 0);
    s.labels = p.get_or<std::map<std::string, std::string>>("labels", {});
    s.after = p.get_or<std::vector<int64_t>>("after", {});
    s.submitted_at_ms = time_field(value, "submitted_at").value_or(0);
    s.started_at_ms = time_field(value, "started_at");
    s.finished_at_ms = time_field(value, "finished_at");
    s.attempts = p.get_or<int>("attempts", 0);
    s.retries = p.get_or<int>("retries", 0);
    s.timeout_s = p.optional<double>("timeout");
    s.pid = p.optional<int>("pid");
    s.stdout_path = p.get_or<std::string>("stdout_path", "");
    s.stderr_path = p.get_or<std::string>("stderr_path", "");
    s.error = p.optional<std::string>("error");
    if (auto stages = p.optional<json>("stages")) {
        if (!stages->is_array()) {
            throw_invalid_params("status.stages: expected an array");
        }
        s.stages.emplace();
        for (const auto& st : *stages) {
            Params sp(st, "status.stages[]");
            StageStatus stage;
            stage.argv = sp.get_or<std::vector<std::string>>("argv", {});
            stage.pid = sp.optional<int>("pid");
            stage.state = sp.get_or<std::string>("state", "");
            stage.exit_code = sp.optional<int>("exit_code");
            stage.signal = sp.optional<int>("signal");
            stage.stderr_path = sp.get_or<std::string>("stderr_path", "");
            s.stages->push_back(std::move(stage));
        }
    }
    s.truncated = p.get_or<bool>("truncated", false);
    s.backend = p.get_or<std::string>("backend", "local");
    s.backend_id = p.optional<std::string>("backend_id");
    s.result = p.optional<std::string>("result");
    return s;
}

int mirror_exit_code(const TaskStatus& s) {
    switch (s.state) {
        case TaskState::pending:
        case TaskState::running:
            return 124;
        case TaskState::succeeded:
            return 0;
        case TaskState::cancelled:
            return 125;
        case TaskState::failed:
            break;
    }
    switch (s.reason) {
        case FailReason::exit:
            return s.exit_code.value_or(1);
        case FailReason::signal:
            return 128 + s.signal.value_or(0);
        case FailReason::timeout:
            return 124;
        case FailReason::spawn:
            return s.exit_code.value_or(126);
        case FailReason::lost:
        case FailReason::dependency:
        case FailReason::none:
            return 125;
    }
    return 125;
}

}  // namespace mpctl::proto
