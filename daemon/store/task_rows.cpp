#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <mpctl/daemon/store/sqlite_util.hpp>
#include <mpctl/daemon/store/task_rows.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::daemon {

namespace {

// The outcome column of a task: per-stage results for pipelines only (a one-process task's single stage
// says nothing its exit_code and signal do not, and building it would cost a JSON document at every
// update), whether output was truncated, and what a warm worker returned.
std::optional<std::string> outcome_of(const Task& t) {
    bool with_stages = !t.stages.empty() && !t.spec.pipeline().empty();
    if (!with_stages && !t.truncated && !t.result) {
        return std::nullopt;
    }
    nlohmann::json outcome = nlohmann::json::object();
    if (with_stages) {
        nlohmann::json stages = nlohmann::json::array();
        for (const auto& s : t.stages) {
            nlohmann::json one = {{"pid", s.pid}};
            if (s.start != 0 && !s.exited) {
                one["start"] = s.start;  // what a restarted daemon re-adopts it by
            }
            if (s.exited) {
                one["exit_code"] = s.exit_code ? nlohmann::json(*s.exit_code) : nlohmann::json(nullptr);
                one["signal"] = s.signal ? nlohmann::json(*s.signal) : nlohmann::json(nullptr);
            }
            stages.push_back(std::move(one));
        }
        outcome["stages"] = std::move(stages);
    }
    if (t.truncated) {
        outcome["truncated"] = true;
    }
    if (t.result) {
        outcome["result"] = *t.result;
    }
    return proto::dump_json(outcome);
}

// The outcome column back into TASK; what cannot be read is left out, with a warning.
void restore_outcome(Task& task, const std::string& text) {
    auto outcome = proto::parse_json_text(text);
    if (!outcome.is_object()) {
        spdlog::warn("task {}: unreadable outcome column, ignored", task.id);
        return;
    }
    task.truncated = outcome.value("truncated", false);
    if (auto result = outcome.find("result"); result != outcome.end() && result->is_string()) {
        task.result = result->get<std::string>();
    }
    auto stages = outcome.find("stages");
    if (stages == outcome.end() || !stages->is_array()) {
        return;
    }
    for (const auto& s : *stages) {
        if (!s.is_object()) {
            continue;
        }
        Task::StageRun run;
        run.pid = s.value("pid", 0);
        run.exited = s.contains("exit_code") || s.contains("signal");
        if (auto v = s.find("exit_code"); v != s.end() && v->is_number_integer()) {
            run.exit_code = v->get<int>();
        }
        if (auto v = s.find("signal"); v != s.end() && v->is_number_integer()) {
            run.signal = v->get<int>();
        }
        if (auto v = s.find("start"); v != s.end() && v->is_number_unsigned()) {
            run.start = v->get<uint64_t>();
        }
        task.stages.push_back(run);
    }
}

std::optional<int> as_int(std::optional<int64_t> v) {
    return v ? std::optional<int>(static_cast<int>(*v)) : std::nullopt;
}

}  // namespace

TaskRow row_of(const Task& t, bool with_spec) {
    TaskRow row;
    row.id = t.id;
    row.state = std::string(proto::to_string(t.state));
    row.reason = std::string(proto::to_string(t.reason));
    row.exit_code = t.exit_code;
    row.signal = t.signal;
    row.submitted_at = t.submitted_at_ms;
    row.started_at = t.started_at_ms;
    row.finished_at = t.finished_at_ms;
    row.attempts = t.attempts;
    row.pid = t.pid;
    if (t.pid && t.pid_start != 0) {
        row.pid_start = static_cast<int64_t>(t.pid_start);
    }
    row.error = t.error;
    row.outcome = outcome_of(t);
    if (with_spec) {
        row.spec = proto::dump_json(proto::to_json(t.spec.expanded(), false));
        row.env_id = t.env_id;
    }
    return row;
}

common::Result<void> write_task_row(sqlite3* db, sqlite3_stmt* stmt, const TaskRow& row, bool with_spec) {
    sqlite3_reset(stmt);
    sqlite3_bind_int64(stmt, 1, row.id);
    sqlite3_bind_text(stmt, 2, row.state.c_str(), -1, SQLITE_TRANSIENT);
    sqlite::bind_optional(stmt, 3, row.reason.empty() ? std::optional<std::string>() : row.reason);
    sqlite::bind_optional(stmt, 4, row.exit_code);
    sqlite::bind_optional(stmt, 5, row.signal);
    sqlite3_bind_int64(stmt, 6, row.submitted_at);
    sqlite::bind_optional(stmt, 7, row.started_at);
    sqlite::bind_optional(stmt, 8, row.finished_at);
    sqlite3_bind_int(stmt, 9, row.attempts);
    sqlite::bind_optional(stmt, 10, row.pid);
    sqlite::bind_optional(stmt, 11, row.error);
    sqlite::bind_optional(stmt, 12, row.outcome);
    sqlite::bind_optional(stmt, 15, row.pid_start);
    if (with_spec) {
        sqlite3_bind_text(stmt, 13, row.spec.c_str(), static_cast<int>(row.spec.size()), SQLITE_STATIC);
        sqlite::bind_optional(stmt, 14, row.env_id != 0 ? std::optional<int64_t>(row.env_id) : std::nullopt);
    }
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        return std::unexpected(sqlite::error(db, "write task " + std::to_string(row.id)));
    }
    return {};
}

std::optional<Task> read_task(sqlite3_stmt* stmt) {
    Task t;
    t.id = sqlite3_column_int64(stmt, 0);
    try {
        nlohmann::json spec = proto::parse_json_text(sqlite::column_text(stmt, 1));
        if (spec.is_discarded()) {
            throw std::runtime_error("the spec is not JSON");
        }
        // Rows written before "" was refused as a cwd carry it for the default one.
        if (auto cwd = spec.find("cwd"); cwd != spec.end() && *cwd == "") {
            spec.erase(cwd);
        }
        t.spec = CompactSpec(proto::parse_task_spec(spec, "spec"), nullptr);
    } catch (const std::exception& e) {
        spdlog::error("task {}: unreadable journal row, skipped: {}", t.id, e.what());
        return std::nullopt;
    }
    t.state = proto::parse_task_state(sqlite::column_text(stmt, 2)).value_or(TaskState::failed);
    t.reason = proto::parse_fail_reason(sqlite::column_text(stmt, 3)).value_or(FailReason::none);
    t.exit_code = as_int(sqlite::column_int(stmt, 4));
    t.signal = as_int(sqlite::column_int(stmt, 5));
    t.submitted_at_ms = sqlite3_column_int64(stmt, 6);
    t.started_at_ms = sqlite::column_int(stmt, 7);
    t.finished_at_ms = sqlite::column_int(stmt, 8);
    t.attempts = sqlite3_column_int(stmt, 9);
    t.pid = as_int(sqlite::column_int(stmt, 10));
    t.error = sqlite::column_optional_text(stmt, 11);
    t.env_id = sqlite::column_int(stmt, 12).value_or(0);
    if (auto outcome = sqlite::column_optional_text(stmt, 13)) {
        restore_outcome(t, *outcome);
    }
    t.pid_start = static_cast<uint64_t>(sqlite::column_int(stmt, 14).value_or(0));
    return t;
}

}  // namespace mpctl::daemon
