#include <algorithm>
#include <charconv>

#include <mpctl/common/shell_quote.hpp>
#include <mpctl/daemon/slurm/job_files.hpp>

namespace mpctl::daemon::slurm {

namespace {

std::optional<int64_t> to_int(std::string_view text) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return v;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

namespace {

// "exec RUNNER DIR [OPTIONS] -- ARGV": the command goes through the runner, not the shell, because the
// status must tell an exit code from a signal, which a shell's $? (128+N) cannot.
std::string exec_runner(const JobRequest& job, const std::vector<std::string>& options,
                        const std::vector<std::string>& argv) {
    std::string s = "exec " + common::shell_quote(job.runner) + " " + common::shell_quote(job.status_dir);
    for (const auto& o : options) {
        s += ' ';
        s += common::shell_quote(o);
    }
    s += " --";
    for (const auto& a : argv) {
        s += ' ';
        s += common::shell_quote(a);
    }
    return s;
}

}  // namespace

std::string job_script(const JobRequest& job) {
    std::vector<std::string> options, words;
    if (job.pipeline.empty()) {
        words = job.argv;
    } else {
        for (const auto& stage : job.pipeline) {
            options.insert(options.end(), {"--stage", std::to_string(stage.argv.size()), stage.stderr_path});
            words.insert(words.end(), stage.argv.begin(), stage.argv.end());
        }
    }
    return "#!/bin/sh\n# written by mpctld: one task's attempt\n" + exec_runner(job, options, words) + "\n";
}

std::string array_script(const JobRequest& job, const std::vector<Element>& elements) {
    std::string s = "#!/bin/sh\n# written by mpctld: " + std::to_string(elements.size()) +
                    " tasks' attempts, one per array index\ncase \"$SLURM_ARRAY_TASK_ID\" in\n";
    for (size_t i = 0; i < elements.size(); ++i) {
        const Element& e = elements[i];
        s += std::to_string(i) + ") " +
             exec_runner(job, {"--element", "--stdout", e.stdout_path, "--stderr", e.stderr_path}, e.argv) +
             " ;;\n";
    }
    s += "esac\necho \"mpctl: no element $SLURM_ARRAY_TASK_ID in this array\" >&2\nexit 2\n";
    return s;
}

std::string element_log_path(const std::string& dir, std::string_view key) {
    return dir + "/array-" + std::string(key) + ".log";
}

std::vector<std::string> sbatch_argv(const std::string& sbatch, const JobRequest& job,
                                     const PoolSettings& settings) {
    std::vector<std::string> a{sbatch, "--parsable", "--job-name=" + job.name, "--chdir=" + job.cwd};
    if (job.array_size > 0) {
        // Each element's runner opens its task's files; Slurm's own output is only the runner's words.
        std::string array = "--array=0-" + std::to_string(job.array_size - 1);
        if (job.array_throttle && static_cast<size_t>(*job.array_throttle) < job.array_size) {
            array += "%" + std::to_string(*job.array_throttle);
        }
        a.push_back(array);
        std::string log = job.status_dir + "/array-%A_%a.log";
        a.insert(a.end(), {"--output=" + log, "--error=" + log});
    } else {
        a.insert(a.end(), {"--output=" + job.stdout_path, "--error=" + job.stderr_path});
    }
    // The daemon made (and emptied) the files: the job appends, as a task's process writes to the
    // descriptors it was given.
    a.push_back("--open-mode=append");
    a.push_back("--input=" + job.stdin_path.value_or("/dev/null"));
    if (!job.comment.empty()) {
        a.push_back("--comment=" + job.comment);
    }
    if (!settings.partition.empty()) {
        a.push_back("--partition=" + settings.partition);
    }
    if (!settings.account.empty()) {
        a.push_back("--account=" + settings.account);
    }
    if (job.timeout_ms) {
        // Slurm counts whole minutes; mpctl's own deadline (the exact one) stops the job first.
        int64_t minutes = (*job.timeout_ms + 59999) / 60000 + 1;
        a.push_back("--time=" + std::to_string(minutes));
    }
    if (job.cpus) {
        a.push_back("--cpus-per-task=" + std::to_string(*job.cpus));
    }
    if (job.mem) {
        a.push_back("--mem=" + std::to_string((*job.mem + (1 << 20) - 1) >> 20) + "M");
    }
    if (job.gpus) {
        a.push_back("--gpus=" + std::to_string(*job.gpus));
    }
    if (!job.after.empty()) {
        std::string dependency = "--dependency=afterok";
        for (const auto& key : job.after) {
            dependency += ":" + key;
        }
        // A dependency that fails leaves it pending for ever otherwise (Slurm's default keeps it, reason
        // DependencyNeverSatisfied).
        a.insert(a.end(), {dependency, "--kill-on-invalid-dep=yes"});
    }
    for (const auto& extra : settings.args) {
        a.push_back(extra);
    }
    a.push_back(job.script_path);
    return a;
}

std::optional<std::string> owned_option(std::string_view arg) {
    std::string_view name = arg.substr(0, arg.find('='));
    for (std::string_view owned :
         {"--array", "--output", "--error", "--input", "--parsable", "--chdir", "--wrap", "--wait",
          "--comment", "--open-mode", "--dependency", "--kill-on-invalid-dep"}) {
        if (name == owned) {
            return std::string(name);
        }
    }
    return std::nullopt;
}

std::optional<int64_t> parse_sbatch_id(std::string_view out) {
    out = trim(out);
    // The last line: sbatch may print warnings before it.
    if (auto nl = out.rfind('\n'); nl != std::string_view::npos) {
        out = trim(out.substr(nl + 1));
    }
    if (auto semi = out.find(';'); semi != std::string_view::npos) {
        out = out.substr(0, semi);
    }
    auto id = to_int(out);
    if (!id || *id <= 0) {
        return std::nullopt;
    }
    return id;
}

bool controller_unreachable(std::string_view error) {
    for (std::string_view says : {"Unable to contact slurm controller", "Socket timed out",
                                  "Slurm backup controller in standby mode", "Zero Bytes were transmitted"}) {
        if (error.find(says) != std::string_view::npos) {
            return true;
        }
    }
    return false;
}

std::string format_status(const JobStatus& s) {
    std::string line = "mpctl-job 1 ";
    line +=
        s.signal ? "signal=" + std::to_string(*s.signal) : "exit=" + std::to_string(s.exit_code.value_or(0));
    line += " start=" + std::to_string(s.started_ms) + " end=" + std::to_string(s.ended_ms);
    if (!s.stages.empty()) {
        line += " stages=" + std::to_string(s.stages.size());
        for (size_t i = 0; i < s.stages.size(); ++i) {
            const auto& stage = s.stages[i];
            line += stage.signal
                        ? " signal" + std::to_string(i) + "=" + std::to_string(*stage.signal)
                        : " exit" + std::to_string(i) + "=" + std::to_string(stage.exit_code.value_or(0));
        }
    }
    return line + "\n";
}

namespace {

// A pipeline has at most as many stages as a task spec allows (proto::k_max_stages: the runner, which
// writes the status, does not link proto).
constexpr int64_t k_status_max_stages = 64;

// KEY as "exitI" or "signalI" with I below STAGES: (I, whether an exit).
std::optional<std::pair<size_t, bool>> stage_field(std::string_view key, size_t stages) {
    bool is_exit = key.starts_with("exit");
    if (!is_exit && !key.starts_with("signal")) {
        return std::nullopt;
    }
    auto index = to_int(key.substr(is_exit ? 4 : 6));
    if (!index || *index < 0 || static_cast<size_t>(*index) >= stages) {
        return std::nullopt;
    }
    return std::pair{static_cast<size_t>(*index), is_exit};
}

}  // namespace

common::Result<JobStatus> parse_status(std::string_view text) {
    auto bad = [&](const std::string& why) {
        std::string shown(text.substr(0, 80));
        return common::plain_error("not a job status (" + why + "): \"" + shown + "\"");
    };
    text = trim(text);
    if (!text.starts_with("mpctl-job 1 ")) {
        return bad("no mpctl-job 1 header");
    }
    text.remove_prefix(12);
    JobStatus s;
    bool start = false, end = false;
    while (!text.empty()) {
        auto space = text.find(' ');
        std::string_view field = text.substr(0, space);
        text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
        auto eq = field.find('=');
        if (eq == std::string_view::npos) {
            return bad("a field without '='");
        }
        auto key = field.substr(0, eq);
        auto value = to_int(field.substr(eq + 1));
        if (!value) {
            return bad("a field that is not a number");
        }
        if (key == "exit" && *value >= 0 && *value <= 255) {
            s.exit_code = static_cast<int>(*value);
        } else if (key == "signal" && *value >= 1 && *value <= 64) {
            s.signal = static_cast<int>(*value);
        } else if (key == "start" && *value >= 0) {
            s.started_ms = *value;
            start = true;
        } else if (key == "end" && *value >= 0) {
            s.ended_ms = *value;
            end = true;
        } else if (key == "stages" && s.stages.empty() && *value >= 2 && *value <= k_status_max_stages) {
            s.stages.resize(static_cast<size_t>(*value));
        } else if (auto stage = stage_field(key, s.stages.size())) {
            auto& [index, is_exit] = *stage;
            auto& into = is_exit ? s.stages[index].exit_code : s.stages[index].signal;
            if (into || (is_exit ? *value > 255 : *value < 1 || *value > 64) || *value < 0) {
                return bad("a stage's field twice or out of range");
            }
            into = static_cast<int>(*value);
        } else {
            return bad("an unknown field or a value out of range");
        }
    }
    if (s.exit_code.has_value() == s.signal.has_value() || !start || !end) {
        return bad("it needs exit or signal, start and end");
    }
    for (const auto& stage : s.stages) {
        if (stage.exit_code.has_value() == stage.signal.has_value()) {
            return bad("a stage without exit or signal");
        }
    }
    return s;
}

namespace {

// FN(id, word) for each line of OUT that is "ID WORD" (one word after the id, which is the first word as
// squeue prints it: "12", "12_3", "12_[3-5]"; other lines, such as errors, are skipped).
template <typename Fn>
void for_each_id_and_word(std::string_view out, Fn fn) {
    while (!out.empty()) {
        auto nl = out.find('\n');
        std::string_view line = trim(out.substr(0, nl));
        out = nl == std::string_view::npos ? std::string_view() : out.substr(nl + 1);
        auto space = line.find(' ');
        if (space == std::string_view::npos) {
            continue;
        }
        std::string_view id = line.substr(0, space);
        std::string_view word = trim(line.substr(space + 1));
        if (!word.empty() && word.find(' ') == std::string_view::npos) {
            fn(id, word);
        }
    }
}

}  // namespace

bool is_job_key(std::string_view key) {
    auto underscore = key.find('_');
    auto digits = [](std::string_view d) {
        return !d.empty() && d.size() <= 18 &&
               std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    return underscore == std::string_view::npos
               ? digits(key)
               : digits(key.substr(0, underscore)) && digits(key.substr(underscore + 1));
}

std::map<std::string, std::string> parse_squeue(std::string_view out) {
    std::map<std::string, std::string> jobs;
    for_each_id_and_word(out, [&](std::string_view key, std::string_view state) {
        if (is_job_key(key)) {
            jobs[std::string(key)] = std::string(state);
        }
    });
    return jobs;
}

std::map<std::string, int64_t> parse_comments(std::string_view out) {
    std::map<std::string, int64_t> jobs;
    for_each_id_and_word(out, [&](std::string_view key, std::string_view comment) {
        if (auto id = to_int(key.substr(0, key.find('_'))); id && *id > 0) {
            jobs[std::string(comment)] = *id;
        }
    });
    return jobs;
}

bool ended_state(std::string_view state) {
    return !(state == "PENDING" || state == "RUNNING" || state == "CONFIGURING" || state == "COMPLETING" ||
             state == "SUSPENDED" || state == "REQUEUED" || state == "REQUEUE_HOLD" ||
             state == "REQUEUE_FED" || state == "RESIZING" || state == "SIGNALING" || state == "STAGE_OUT" ||
             state == "STOPPED" || state == "RESV_DEL_HOLD");
}

std::string status_path(const std::string& dir, std::string_view key) {
    return dir + "/job-" + std::string(key) + ".status";
}

std::string started_path(const std::string& dir, std::string_view key) {
    return dir + "/job-" + std::string(key) + ".started";
}

NoStatus without_status(std::string_view key, std::string_view state) {
    std::string job = "Slurm job " + std::string(key);
    if (state.empty()) {
        return {0, job + " is no longer known to Slurm and left no status"};
    }
    if (state == "CANCELLED") {
        return {15, job + " was cancelled outside mpctl (scancel)"};
    }
    if (state == "TIMEOUT" || state == "DEADLINE") {
        return {15, job + " reached its Slurm time limit (" + std::string(state) + ")"};
    }
    if (state == "NODE_FAIL" || state == "BOOT_FAIL") {
        return {0, job + " ended " + std::string(state) + ": its node failed"};
    }
    if (state == "OUT_OF_MEMORY") {
        return {9, job + " ran out of memory (OUT_OF_MEMORY)"};
    }
    return {0, job + " ended " + std::string(state) + " without a status"};
}

}  // namespace mpctl::daemon::slurm
