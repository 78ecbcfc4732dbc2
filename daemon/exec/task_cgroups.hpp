#pragma once
// TaskCgroups: --cgroup containment. A process group only holds what does not leave it; a child that calls
// setsid() (a daemonizing server, `setsid cmd &`) escapes every signal sent to the group. A cgroup v2 of
// its own holds the whole tree whatever it does, and cgroup.kill ends all of it at once.
//
// Feature-detected: it needs a cgroup v2 hierarchy in which the daemon may create directories below its
// own cgroup (root, or a systemd unit with Delegate=yes). Where that is missing, unavailable() says why
// and tasks that ask for a cgroup are refused at submit. No controllers are enabled: only cgroup.procs and
// cgroup.kill are used, which every cgroup has. Loop thread only.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

class TaskCgroups {
  public:
    // Finds the daemon's own cgroup. At the first task, "mpctl-PID" is made below it for the tasks'
    // cgroups, and the directories of daemons that are gone (a crash) are emptied and removed.
    TaskCgroups();
    ~TaskCgroups();  // kills and removes whatever is left
    TaskCgroups(const TaskCgroups&) = delete;
    TaskCgroups& operator=(const TaskCgroups&) = delete;

    // nullopt when tasks can have cgroups; otherwise why not, for the refusal.
    [[nodiscard]] const std::optional<std::string>& unavailable() const { return unavailable_; }

    // Makes the task's cgroup (empty, also on a retry) and opens its cgroup.procs: each spawned stage writes
    // itself into it before exec, so the tree is inside from its first instruction.
    [[nodiscard]] common::Result<common::UniqueFd> create(int64_t task_id);
    // SIGKILL to every process in the task's cgroup.
    void kill(int64_t task_id);
    // The task ended: whatever it left behind is killed and the cgroup removed (once its last process is
    // gone; until then it is retried at the next create or release).
    void release(int64_t task_id);
    // A task an earlier daemon left running (a crash, or this process before an upgrade's exec): its
    // cgroup is the one /proc/PID/cgroup names, which must be a task-TASK_ID directory of an mpctl-* root
    // below this daemon's cgroup. From here on it is the task's (kill, release), and the sweep of dead
    // daemons' directories spares it.
    [[nodiscard]] common::Result<void> adopt(int64_t task_id, int pid);

  private:
    [[nodiscard]] common::Result<void> make_root();
    [[nodiscard]] std::string dir_of(int64_t task_id) const;
    [[nodiscard]] bool is_adopted(const std::string& dir) const;
    static void kill_dir(const std::string& dir);
    static bool remove_dir(const std::string& dir);
    void retry_removals();

    std::string mount_;   // the cgroup2 mount point
    std::string parent_;  // the daemon's own cgroup: <cgroup2 mount><path>
    std::string root_;    // ours below it: mpctl-<pid>
    bool root_made_ = false;
    std::optional<std::string> unavailable_;
    std::set<std::string> to_remove_;
    std::map<int64_t, std::string> adopted_;  // task id -> its cgroup, taken over from an earlier daemon
};

}  // namespace mpctl::daemon
