#include <mpctl/daemon/exec/job_pids.hpp>
#include <mpctl/daemon/tasks/pipeline_outcome.hpp>
#include <mpctl/daemon/tasks/status_view.hpp>

namespace mpctl::daemon {

proto::TaskStatus StatusView::status(const Task& t) const {
    proto::TaskStatus s;
    s.id = t.id;
    s.name = t.spec.name();
    s.state = t.state;
    s.reason = t.reason;
    s.exit_code = t.exit_code;
    s.signal = t.signal;
    if (const std::string* shell = t.spec.shell()) {
        s.shell = *shell;
    } else {
        s.argv = t.spec.argv();
    }
    s.cwd = t.spec.cwd().empty() ? default_cwd_ : t.spec.cwd();
    s.pool = t.spec.pool();
    s.priority = t.spec.priority();
    s.labels = t.spec.labels();
    s.after = t.spec.after();
    s.submitted_at_ms = t.submitted_at_ms;
    s.started_at_ms = t.started_at_ms;
    s.finished_at_ms = t.finished_at_ms;
    s.attempts = t.attempts;
    s.retries = t.spec.retries();
    s.timeout_s = t.spec.timeout_s();
    s.pid = t.pid;
    // A Slurm job's stand-in pid (exec/job_pids.hpp) is no process here: shown as the job's id.
    int run_pid = t.pid ? *t.pid : (t.stages.empty() ? 0 : t.stages.front().pid);
    uint64_t run_start = t.pid ? t.pid_start : (t.stages.empty() ? 0 : t.stages.front().start);
    if (is_job_pid(run_pid)) {
        s.pid.reset();
        s.backend = "slurm";
        if (std::string key = job_key(run_pid, run_start); !key.empty()) {
            s.backend_id = std::move(key);
        }
    } else if (t.starting() && backend_of_) {
        s.backend = backend_of_(s.pool);  // being submitted: no job id yet
    }
    OutputPaths paths = outputs_.paths(t.id);
    s.stdout_path = std::move(paths.stdout_path);
    s.stderr_path = std::move(paths.stderr_path);
    s.error = t.error;
    s.truncated = t.truncated;
    s.result = t.result;
    if (!t.spec.pipeline().empty()) {
        s.argv.reset();
        s.stages.emplace();
        bool this_attempt = t.stages.size() == t.spec.pipeline().size();
        for (size_t i = 0; i < t.spec.pipeline().size(); ++i) {
            proto::StageStatus st;
            st.argv = t.spec.pipeline()[i];
            st.stderr_path = outputs_.stage_stderr_path(t.id, i);
            if (!this_attempt) {
                st.state = t.finished() ? "failed" : "pending";  // never started (spawn failure, cancel)
            } else if (!t.stages[i].exited) {
                if (t.finished()) {
                    st.state = "failed";  // lost with the daemon that ran it
                } else {
                    st.state = "running";
                    st.pid = t.stages[i].pid;
                }
            } else {
                st.exit_code = t.stages[i].exit_code;
                st.signal = t.stages[i].signal;
                st.state = stage_succeeded(t, i) ? "succeeded" : "failed";
            }
            s.stages->push_back(std::move(st));
        }
        s.stderr_path = s.stages->back().stderr_path;
    }
    return s;
}

}  // namespace mpctl::daemon
