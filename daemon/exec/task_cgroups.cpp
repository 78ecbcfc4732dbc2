#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/daemon/exec/task_cgroups.hpp>

namespace mpctl::daemon {

namespace {

// The cgroup2 mount point, from /proc/self/mountinfo; empty if there is none.
std::string cgroup2_mount() {
    auto info = common::read_file("/proc/self/mountinfo");
    if (!info) {
        return {};
    }
    std::istringstream lines(*info);
    std::string line;
    while (std::getline(lines, line)) {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        auto dash = line.find(" - ");
        if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) {
            continue;
        }
        std::istringstream fields(line.substr(0, dash));
        std::string id, parent, dev, root, mount;
        fields >> id >> parent >> dev >> root >> mount;
        if (root == "/") {
            return mount;
        }
    }
    return {};
}

// The cgroup of process PID ("self": ours) in the v2 hierarchy: the "0::PATH" line of /proc/PID/cgroup.
std::string cgroup_of(const std::string& pid = "self") {
    auto text = common::read_file("/proc/" + pid + "/cgroup");
    if (!text) {
        return {};
    }
    std::istringstream lines(*text);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.starts_with("0::")) {
            return line.substr(3);
        }
    }
    return {};
}

bool write_text(const std::string& path, const char* text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    bool ok = ::write(fd, text, std::strlen(text)) == static_cast<ssize_t>(std::strlen(text));
    ::close(fd);
    return ok;
}

bool pid_alive(pid_t pid) {
    return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

}  // namespace

TaskCgroups::TaskCgroups() {
    std::string mount = cgroup2_mount();
    if (mount.empty()) {
        unavailable_ = "no cgroup v2 hierarchy is mounted";
        return;
    }
    std::string own = cgroup_of();
    if (own.empty()) {
        unavailable_ = "the daemon is not in a cgroup v2 (only v1 controllers hold it)";
        return;
    }
    mount_ = mount;
    parent_ = mount + (own == "/" ? "" : own);
    if (::access((parent_ + "/cgroup.procs").c_str(), W_OK) != 0 || ::access(parent_.c_str(), W_OK) != 0) {
        unavailable_ = "cannot create cgroups below " + parent_ + ": " + std::strerror(errno) +
                       " (run as root, or under systemd with Delegate=yes)";
        return;
    }
    root_ = parent_ + "/mpctl-" + std::to_string(::getpid());
}

common::Result<void> TaskCgroups::make_root() {
    if (root_made_) {
        return {};
    }
    if (::mkdir(root_.c_str(), 0755) != 0 && errno != EEXIST) {
        return common::sys_error("mkdir " + root_);
    }
    root_made_ = true;
    // Left by daemons that died without cleaning up: their tasks are lost, their trees must not live on.
    if (DIR* dir = ::opendir(parent_.c_str())) {
        while (dirent* e = ::readdir(dir)) {
            std::string name = e->d_name;
            if (!name.starts_with("mpctl-")) {
                continue;
            }
            pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + 6));
            if (pid == ::getpid() || pid_alive(pid)) {
                continue;
            }
            std::string stale = parent_ + "/" + name;
            if (DIR* tasks = ::opendir(stale.c_str())) {
                while (dirent* t = ::readdir(tasks)) {
                    if (std::strncmp(t->d_name, "task-", 5) == 0 && !is_adopted(stale + "/" + t->d_name)) {
                        kill_dir(stale + "/" + t->d_name);
                        to_remove_.insert(stale + "/" + t->d_name);
                    }
                }
                ::closedir(tasks);
            }
            to_remove_.insert(stale);
        }
        ::closedir(dir);
    }
    spdlog::debug("task cgroups under {}", root_);
    return {};
}

TaskCgroups::~TaskCgroups() {
    if (!root_made_ && adopted_.empty()) {
        return;
    }
    for (const auto& [task, dir] : adopted_) {
        kill_dir(dir);
        to_remove_.insert(dir);
    }
    if (DIR* dir = ::opendir(root_.c_str())) {
        while (dirent* e = ::readdir(dir)) {
            if (std::strncmp(e->d_name, "task-", 5) == 0) {
                kill_dir(root_ + "/" + e->d_name);
                to_remove_.insert(root_ + "/" + e->d_name);
            }
        }
        ::closedir(dir);
    }
    // The killed processes leave their cgroups as they exit: give them a moment.
    for (int i = 0; i < 100 && !to_remove_.empty(); ++i) {
        retry_removals();
        if (!to_remove_.empty()) {
            ::usleep(10000);
        }
    }
    if (!remove_dir(root_)) {
        spdlog::warn("could not remove {}: {}", root_, std::strerror(errno));
    }
}

std::string TaskCgroups::dir_of(int64_t task_id) const {
    if (auto it = adopted_.find(task_id); it != adopted_.end()) {
        return it->second;
    }
    return root_ + "/task-" + std::to_string(task_id);
}

bool TaskCgroups::is_adopted(const std::string& dir) const {
    for (const auto& [task, adopted] : adopted_) {
        if (adopted == dir) {
            return true;
        }
    }
    return false;
}

common::Result<void> TaskCgroups::adopt(int64_t task_id, int pid) {
    if (unavailable_) {
        return common::plain_error(*unavailable_);
    }
    std::string path = cgroup_of(std::to_string(pid));
    if (path.empty()) {
        return common::plain_error("the cgroup of process " + std::to_string(pid) + " is unreadable");
    }
    std::string dir = mount_ + path;
    std::string parent_of_dir = dir.substr(0, dir.rfind('/'));
    bool ours = dir.ends_with("/task-" + std::to_string(task_id)) &&
                parent_of_dir.rfind(parent_ + "/mpctl-", 0) == 0 &&
                parent_of_dir.find('/', parent_.size() + 1) == std::string::npos;
    if (!ours) {
        return common::plain_error("its process " + std::to_string(pid) + " is in cgroup " + path +
                                   ", not in this task's own");
    }
    adopted_[task_id] = dir;
    return {};
}

common::Result<common::UniqueFd> TaskCgroups::create(int64_t task_id) {
    if (unavailable_) {
        return common::plain_error(*unavailable_);
    }
    if (auto r = make_root(); !r) {
        return std::unexpected(r.error());
    }
    retry_removals();
    std::string dir = dir_of(task_id);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        return common::sys_error("mkdir " + dir);
    }
    to_remove_.erase(dir);
    return common::open_cloexec(dir + "/cgroup.procs", O_WRONLY);
}

void TaskCgroups::kill(int64_t task_id) {
    if (root_made_ || adopted_.contains(task_id)) {
        kill_dir(dir_of(task_id));
    }
}

void TaskCgroups::release(int64_t task_id) {
    if (!root_made_ && !adopted_.contains(task_id)) {
        return;
    }
    std::string dir = dir_of(task_id);
    kill_dir(dir);
    to_remove_.insert(dir);
    if (adopted_.erase(task_id) > 0) {
        // An earlier daemon's root, gone once its last task's cgroup is (ours is removed at the end).
        if (std::string root = dir.substr(0, dir.rfind('/')); root != root_) {
            to_remove_.insert(root);
        }
    }
    retry_removals();
}

void TaskCgroups::kill_dir(const std::string& dir) {
    // cgroup.kill (Linux 5.14) kills the whole tree atomically, forks in flight included; older kernels:
    // one SIGKILL per listed process.
    if (write_text(dir + "/cgroup.kill", "1")) {
        return;
    }
    auto procs = common::read_file(dir + "/cgroup.procs");
    if (!procs) {
        return;
    }
    std::istringstream pids(*procs);
    pid_t pid = 0;
    while (pids >> pid) {
        ::kill(pid, SIGKILL);
    }
}

bool TaskCgroups::remove_dir(const std::string& dir) {
    return ::rmdir(dir.c_str()) == 0 || errno == ENOENT;
}

void TaskCgroups::retry_removals() {
    for (auto it = to_remove_.begin(); it != to_remove_.end();) {
        it = remove_dir(*it) ? to_remove_.erase(it) : std::next(it);
    }
}

}  // namespace mpctl::daemon
