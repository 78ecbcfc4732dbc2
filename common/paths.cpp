#include <cstdlib>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpctl/common/paths.hpp>

namespace mpctl::common {

namespace {

std::string env_or_empty(const char* name) {
    const char* v = std::getenv(name);
    return (v != nullptr && *v != '\0') ? std::string(v) : std::string();
}

std::string home_dir() {
    // $HOME only: the CLI is linked statically and must not reach into NSS.
    std::string home = env_or_empty("HOME");
    return home.empty() ? std::string("/") : home;
}

}  // namespace

std::string default_socket_path() {
    if (auto s = env_or_empty("MPCTL_SOCKET"); !s.empty()) {
        return s;
    }
    if (auto run = env_or_empty("XDG_RUNTIME_DIR"); !run.empty()) {
        return run + "/mpctl/mpctld.sock";
    }
    return "/tmp/mpctl-" + std::to_string(::geteuid()) + "/mpctld.sock";
}

std::string default_state_dir() {
    if (auto s = env_or_empty("MPCTL_STATE_DIR"); !s.empty()) {
        return s;
    }
    if (auto s = env_or_empty("XDG_STATE_HOME"); !s.empty()) {
        return s + "/mpctl";
    }
    return home_dir() + "/.local/state/mpctl";
}

std::string default_config_path() {
    if (auto s = env_or_empty("XDG_CONFIG_HOME"); !s.empty()) {
        return s + "/mpctl/mpctld.toml";
    }
    return home_dir() + "/.config/mpctl/mpctld.toml";
}

std::string resolve_socket_path(const std::string& flag) {
    return absolute_path(flag.empty() ? default_socket_path() : flag);
}

std::string resolve_state_dir(const std::string& flag) {
    return absolute_path(flag.empty() ? default_state_dir() : flag);
}

std::string absolute_path(const std::string& path, const std::string& base) {
    if (path.empty() || path.front() == '/') {
        return path;
    }
    std::string dir = base;
    if (dir.empty()) {
        char buf[PATH_MAX];
        if (::getcwd(buf, sizeof buf) == nullptr) {
            return path;
        }
        dir = buf;
    }
    if (path == ".") {
        return dir;
    }
    std::string rel = path.starts_with("./") ? path.substr(2) : path;
    return dir.ends_with('/') ? dir + rel : dir + "/" + rel;
}

std::string parent_dir(const std::string& path) {
    auto pos = path.find_last_of('/');
    if (pos == std::string::npos) {
        return ".";
    }
    if (pos == 0) {
        return "/";
    }
    return path.substr(0, pos);
}

Result<void> make_dirs(const std::string& dir, unsigned mode) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            return sys_error("create directory " + dir, ENOTDIR);
        }
        return {};
    }
    std::string parent = parent_dir(dir);
    if (parent != dir && parent != "." && parent != "/") {
        if (auto r = make_dirs(parent, 0755); !r) {
            return r;
        }
    }
    if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
        return sys_error("create directory " + dir);
    }
    return {};
}

std::string executable_dir() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        return {};
    }
    buf[n] = '\0';
    return parent_dir(std::string(buf, static_cast<size_t>(n)));
}

}  // namespace mpctl::common
