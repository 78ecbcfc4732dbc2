#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <unistd.h>

#include <mpctl/cli/output.hpp>
#include <mpctl/common/signals.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/common/terminal_text.hpp>
#include <mpctl/common/time.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/task_spec.hpp>

namespace mpctl::cli {

using proto::TaskState;
using proto::TaskStatus;

bool color_enabled(int fd) {
    const char* no_color = std::getenv("NO_COLOR");
    return ::isatty(fd) == 1 && (no_color == nullptr || no_color[0] == '\0');
}

void print_json(const nlohmann::json& value) {
    std::string line = proto::dump_json(value);
    line.push_back('\n');
    write_out(1, line);
}

void write_out(int fd, std::string_view bytes) {
    (void)common::write_all(fd, bytes);
}

std::string value_text(const nlohmann::json& value, bool escape) {
    if (!value.is_string()) {
        return proto::dump_json(value);
    }
    const auto& text = value.get_ref<const std::string&>();
    return escape ? common::terminal_text(text) : text;
}

std::string human_duration(int64_t ms) {
    char buf[32];
    if (ms < 60'000) {
        std::snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ms) / 1000.0);
    } else if (ms < 3'600'000) {
        std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                      static_cast<long long>(ms / 1000 % 60));
    } else {
        std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                      static_cast<long long>(ms / 60'000 % 60));
    }
    return buf;
}

std::string describe_outcome(const TaskStatus& t) {
    std::string state(proto::to_string(t.state));
    if (t.state != TaskState::failed) {
        return state;
    }
    switch (t.reason) {
        case proto::FailReason::exit:
            return state + " (exit " + std::to_string(t.exit_code.value_or(-1)) + ")";
        case proto::FailReason::signal:
            return state + " (" + common::signal_name(t.signal.value_or(0)) + ")";
        default:
            return state + " (" + std::string(proto::to_string(t.reason)) + ")";
    }
}

std::string unexplained_end(const TaskStatus& t) {
    if (t.state != TaskState::failed ||
        !(t.reason == proto::FailReason::spawn || t.reason == proto::FailReason::timeout ||
          t.reason == proto::FailReason::lost || t.reason == proto::FailReason::dependency)) {
        return {};
    }
    return "mpctl: task " + std::to_string(t.id) + " " + describe_outcome(t) + ": " +
           common::terminal_text(t.error.value_or("")) + "\n";
}

std::string command_of(const TaskStatus& t) {
    if (t.shell) {
        return common::terminal_text(*t.shell);
    }
    if (t.stages) {
        std::vector<std::vector<std::string>> stages;
        for (const auto& stage : *t.stages) {
            stages.push_back(stage.argv);
        }
        return proto::display_pipeline(stages);
    }
    return t.argv ? proto::display_words(*t.argv) : std::string();
}

namespace {

const char* state_color(TaskState s) {
    switch (s) {
        case TaskState::succeeded:
            return "\033[32m";
        case TaskState::failed:
            return "\033[31m";
        case TaskState::running:
            return "\033[33m";
        case TaskState::cancelled:
        case TaskState::pending:
            return "\033[90m";
    }
    return "";
}

std::string pad(std::string s, size_t width, bool right = false) {
    if (s.size() >= width) {
        return s;
    }
    std::string fill(width - s.size(), ' ');
    return right ? fill + s : s + fill;
}

}  // namespace

std::string format_table(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right) {
    std::vector<size_t> width;
    for (const auto& row : rows) {
        width.resize(std::max(width.size(), row.size()), 0);
        for (size_t i = 0; i < row.size(); ++i) {
            width[i] = std::max(width[i], row[i].size());
        }
    }
    std::string out;
    for (const auto& row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            bool last = i + 1 == row.size();
            line += (i == 0 ? "" : "  ") + (last && !(i < right.size() && right[i])
                                                ? row[i]
                                                : pad(row[i], width[i], i < right.size() && right[i]));
        }
        line.erase(line.find_last_not_of(' ') + 1);
        out += line + "\n";
    }
    return out;
}

namespace {

// Characters (UTF-8 code points) in TEXT: what a terminal column count is, near enough for escaped text.
size_t columns_of(std::string_view text) {
    size_t n = 0;
    for (unsigned char c : text) {
        n += (c & 0xC0) != 0x80 ? 1 : 0;
    }
    return n;
}

// TEXT cut to WIDTH columns, the last one an ellipsis, if it is wider.
std::string fit(const std::string& text, size_t width) {
    if (columns_of(text) <= width || width == 0) {
        return columns_of(text) <= width ? text : std::string();
    }
    size_t keep = width - 1;
    size_t i = 0;
    for (size_t n = 0; i < text.size(); ++i) {
        if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && n++ == keep) {
            break;
        }
    }
    return text.substr(0, i) + "\xE2\x80\xA6";  // U+2026
}

// When a task last changed, in local time: "14:03", "12-01 09:30" for another day; on a terminal with how
// long ago ("14:03 (3m ago)").
std::string when_of(const TaskStatus& t, int64_t now_ms, bool ago) {
    int64_t ms = t.finished_at_ms.value_or(t.started_at_ms.value_or(t.submitted_at_ms));
    time_t secs = static_cast<time_t>(ms / 1000);
    time_t now = static_cast<time_t>(now_ms / 1000);
    struct tm then_tm {};
    struct tm now_tm {};
    ::localtime_r(&secs, &then_tm);
    ::localtime_r(&now, &now_tm);
    char text[32];
    bool today = then_tm.tm_year == now_tm.tm_year && then_tm.tm_yday == now_tm.tm_yday;
    std::strftime(text, sizeof text, today ? "%H:%M" : "%m-%d %H:%M", &then_tm);
    std::string out = text;
    if (ago) {
        out += " (" + (now_ms - ms < 1000 ? std::string("now") : human_duration(now_ms - ms) + " ago") + ")";
    }
    return out;
}

// A pending task's state says what it waits for.
std::string state_text(const TaskStatus& t) {
    if (t.state != TaskState::pending) {
        return describe_outcome(t);
    }
    if (t.after.empty()) {
        return "pending (queued)";
    }
    std::string ids;
    for (auto id : t.after) {
        ids += (ids.empty() ? "" : ",") + std::to_string(id);
    }
    return "pending (after " + ids + ")";
}

// The terminal's width if stdout is one, else 0: no limit.
size_t terminal_width() {
    return ::isatty(1) == 1 ? common::terminal_columns(1, 80) : 0;
}

}  // namespace

void print_status_table(const std::vector<TaskStatus>& tasks, bool wide) {
    bool color = color_enabled(1);
    size_t width = wide ? 0 : terminal_width();
    int64_t now_ms = common::now_unix_ms();
    struct Row {
        std::string id, state, exit, time, when, pool, name, command;
        TaskState st;
    };
    std::vector<Row> rows;
    rows.push_back(Row{"ID", "STATE", "EXIT", "TIME", "WHEN", "POOL", "NAME", "COMMAND", TaskState::pending});
    for (const auto& t : tasks) {
        std::string exit = t.exit_code ? std::to_string(*t.exit_code)
                                       : (t.signal ? common::signal_name(*t.signal) : std::string("-"));
        auto d = t.duration_ms();
        std::string name = common::terminal_text(t.name.value_or("-"));
        rows.push_back(Row{std::to_string(t.id), state_text(t), exit, d ? human_duration(*d) : "-",
                           when_of(t, now_ms, width > 0), t.pool, width > 0 ? fit(name, 24) : name,
                           command_of(t), t.state});
    }
    size_t w[7] = {0, 0, 0, 0, 0, 0, 0};
    for (const auto& r : rows) {
        const std::string* cells[7] = {&r.id, &r.state, &r.exit, &r.time, &r.when, &r.pool, &r.name};
        for (size_t i = 0; i < 7; ++i) {
            w[i] = std::max(w[i], columns_of(*cells[i]));
        }
    }
    size_t before_command = 0;
    for (size_t x : w) {
        before_command += x + 2;
    }
    // Too narrow for a useful command: the name gives way first (down to 4 columns).
    constexpr size_t k_min_command = 16;
    if (width > 0 && before_command + k_min_command > width && w[6] > 4) {
        size_t cut = std::min(w[6] - 4, before_command + k_min_command - width);
        w[6] -= cut;
        before_command -= cut;
        for (size_t i = 1; i < rows.size(); ++i) {
            rows[i].name = fit(rows[i].name, w[6]);
        }
    }
    // Still too narrow: how long ago goes next ("14:03 (3.10s ago)" is 17 columns, "14:03" 5).
    if (width > 0 && before_command + k_min_command > width) {
        size_t was = w[4];
        w[4] = columns_of(rows[0].when);
        for (size_t i = 1; i < rows.size(); ++i) {
            rows[i].when = when_of(tasks[i - 1], now_ms, false);
            w[4] = std::max(w[4], columns_of(rows[i].when));
        }
        before_command -= was - w[4];
    }
    std::string out;
    for (size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        std::string state = pad(r.state, w[1]);
        if (color && i > 0) {
            state = state_color(r.st) + state + "\033[0m";
        }
        std::string command = r.command;
        if (width > 0) {
            // The command gets what is left of the line, at least k_min_command columns.
            command =
                fit(command, std::max(width > before_command ? width - before_command : 0, k_min_command));
        }
        std::string line = pad(r.id, w[0], true) + "  " + state + "  " + pad(r.exit, w[2], true) + "  " +
                           pad(r.time, w[3], true) + "  " + pad(r.when, w[4]) + "  " + pad(r.pool, w[5]) +
                           "  " + pad(r.name, w[6] + (r.name.size() - columns_of(r.name))) + "  " + command;
        if (color && i == 0) {
            line = "\033[1m" + line + "\033[0m";
        }
        out += line + "\n";
    }
    write_out(1, out);
}

void print_status_detail(const TaskStatus& t) {
    std::string out;
    auto field = [&](const std::string& name, const std::string& value) {
        out += pad(name + ":", 13) + value + "\n";
    };
    auto time_or_dash = [](const std::optional<int64_t>& ms) {
        return ms ? common::format_rfc3339_ms(*ms) : std::string("-");
    };
    field("id", std::to_string(t.id));
    if (t.name) {
        field("name", common::terminal_text(*t.name));
    }
    std::string state = describe_outcome(t);
    if (color_enabled(1)) {
        state = state_color(t.state) + state + "\033[0m";
    }
    field("state", state);
    field("command", command_of(t));
    field("cwd", common::terminal_text(t.cwd));
    field("pool", t.pool + (t.priority != 0 ? " (priority " + std::to_string(t.priority) + ")" : ""));
    if (!t.labels.empty()) {
        std::string labels;
        for (const auto& [k, v] : t.labels) {
            labels += (labels.empty() ? "" : " ") + common::terminal_text(k) + "=" + common::terminal_text(v);
        }
        field("labels", labels);
    }
    if (!t.after.empty()) {
        std::string after;
        for (auto id : t.after) {
            after += (after.empty() ? "" : " ") + std::to_string(id);
        }
        field("after", after);
    }
    if (t.backend_id) {
        field(t.backend, "job " + *t.backend_id);
    }
    if (t.pid) {
        field("pid", std::to_string(*t.pid));
    }
    if (t.exit_code) {
        field("exit code", std::to_string(*t.exit_code));
    }
    if (t.signal) {
        field("signal", common::signal_name(*t.signal));
    }
    field("attempts",
          std::to_string(t.attempts) + (t.retries > 0 ? " of " + std::to_string(t.retries + 1) : ""));
    field("submitted", common::format_rfc3339_ms(t.submitted_at_ms));
    field("started", time_or_dash(t.started_at_ms));
    field("finished", time_or_dash(t.finished_at_ms));
    if (auto d = t.duration_ms()) {
        field("duration", human_duration(*d));
    }
    if (t.timeout_s) {
        field("timeout", human_duration(static_cast<int64_t>(*t.timeout_s * 1000)));
    }
    field("stdout", common::terminal_text(t.stdout_path));
    if (t.stages) {
        for (size_t i = 0; i < t.stages->size(); ++i) {
            const auto& st = (*t.stages)[i];
            std::string outcome = st.state;
            if (st.pid) {
                outcome += " (pid " + std::to_string(*st.pid) + ")";
            } else if (st.signal) {
                outcome += " (" + common::signal_name(*st.signal) + ")";
            } else if (st.exit_code) {
                outcome += " (exit " + std::to_string(*st.exit_code) + ")";
            }
            field("stage " + std::to_string(i), outcome + "  " + proto::display_words(st.argv));
            field("  stderr", common::terminal_text(st.stderr_path));
        }
    } else {
        field("stderr", common::terminal_text(t.stderr_path));
    }
    if (t.truncated) {
        field("truncated", "yes: output past --max-output was not kept");
    }
    if (t.error) {
        field("error", common::terminal_text(*t.error));
    }
    write_out(1, out);
}

}  // namespace mpctl::cli
