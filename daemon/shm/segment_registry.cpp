#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <mpctl/common/base64.hpp>
#include <mpctl/common/shm.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/common/time.hpp>
#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/daemon/shm/segment_registry.hpp>
#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/list_values.hpp>

namespace mpctl::daemon {

using nlohmann::json;
using proto::ErrorCode;
using proto::RequestError;

namespace {

std::string mode_text(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

// The pids whose memory maps segment PATH (inode INO), from /proc/PID/maps (only the processes whose maps
// this user may read: its own, or all for root). Read on the loop: an explicit `shm info`, a few ms for
// hundreds of processes.
std::vector<pid_t> mapping_pids(const std::string& path, ino_t ino) {
    std::vector<pid_t> pids;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) {
        return pids;
    }
    const std::string inode = " " + std::to_string(ino) + " ";
    while (const dirent* e = ::readdir(proc)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        // The daemon's own mapping (MappingCache's) serves requests; it is nobody's attachment.
        if (pid <= 0 || *end != '\0' || pid == ::getpid()) {
            continue;
        }
        std::ifstream maps("/proc/" + std::string(e->d_name) + "/maps");
        std::string line;
        while (std::getline(maps, line)) {
            // "7f..-7f.. rw-s 00000000 00:1a 123456    /dev/shm/NAME" (" (deleted)" once unlinked)
            auto at = line.find(path);
            if (at != std::string::npos && line.find(inode) != std::string::npos &&
                (at + path.size() == line.size() || line[at + path.size()] == ' ')) {
                pids.push_back(static_cast<pid_t>(pid));
                break;
            }
        }
    }
    ::closedir(proc);
    return pids;
}

[[noreturn]] void throw_open_error(const std::string& name, const common::Error& e) {
    if (e.err == ENOENT) {
        throw RequestError(ErrorCode::unknown_id, "no segment " + name, {{"name", name}});
    }
    throw RequestError(ErrorCode::io_error, e.message(), {{"name", name}});
}

common::UniqueFd open_or_throw(const std::string& name, int flags) {
    auto fd = common::shm::open_segment(name, flags);
    if (!fd) {
        throw_open_error(name, fd.error());
    }
    return std::move(*fd);
}

std::string_view as_view(const MappingCache::View& v) {
    return {v.data, v.size};
}

uint64_t size_of(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

SegmentRegistry::~SegmentRegistry() {
    for (auto& [name, s] : segments_) {
        if (s.lease) {
            leases_.release(*s.lease);
        }
    }
}

bool SegmentRegistry::alive(const std::string& name, const Segment& s) {
    struct stat held {
    }, named{};
    return ::fstat(s.fd.get(), &held) == 0 && held.st_nlink > 0 &&
           ::stat(common::shm::path_of(name).c_str(), &named) == 0 && named.st_dev == s.dev &&
           named.st_ino == s.ino;
}

SegmentRegistry::Segment* SegmentRegistry::live(const std::string& name) {
    auto it = segments_.find(name);
    if (it == segments_.end()) {
        return nullptr;
    }
    if (!alive(name, it->second)) {
        spdlog::info("segment {} vanished (unlinked or replaced outside mpctl): forgotten", name);
        drop(name, false);
        return nullptr;
    }
    return &it->second;
}

void SegmentRegistry::drop(const std::string& name, bool unlink_file) {
    mappings_.forget(name);
    auto it = segments_.find(name);
    if (it == segments_.end()) {
        return;
    }
    if (unlink_file && alive(name, it->second) && ::unlink(common::shm::path_of(name).c_str()) != 0) {
        spdlog::warn("unlink {}: {}", common::shm::path_of(name), std::strerror(errno));
    }
    if (it->second.lease) {
        leases_.release(*it->second.lease);
    }
    if (it->second.journaled) {
        store_.delete_segment(name);
    }
    segments_.erase(it);
}

json SegmentRegistry::describe(const std::string& name, const Segment& s) const {
    json j = {{"name", name},
              {"path", common::shm::path_of(name)},
              {"size", s.size},
              {"mode", mode_text(s.mode)},
              {"created_at", common::format_rfc3339_ms(s.created_at_ms)},
              {"registered", true},
              {"persist", !s.lease.has_value()},
              {"lease", s.lease ? leases_.describe(*s.lease) : json(nullptr)}};
    return j;
}

common::Result<LeaseRegistry::LeaseId> SegmentRegistry::lease_for(const std::string& name,
                                                                  const LeaseSpec& spec,
                                                                  const std::shared_ptr<Session>& session) {
    return leases_.open(spec, session, [this, name] {
        // The lease ended: the segment goes, if it is still the one made.
        auto it = segments_.find(name);
        if (it != segments_.end()) {
            it->second.lease.reset();
            drop(name, true);
        }
    });
}

void SegmentRegistry::create(const Create& r, const std::shared_ptr<Responder>& responder) {
    if (r.size == 0 || r.size > max_size_) {
        proto::throw_invalid_params("params.size: must be from 1 to " + std::to_string(max_size_) +
                                    " bytes (the daemon's shm_max_size)");
    }
    (void)live(r.name);  // a vanished one's name is free again
    auto fd = common::shm::create(r.name, r.size, r.mode, r.content);
    if (!fd) {
        if (fd.error().err == EEXIST) {
            throw RequestError(ErrorCode::invalid_state, "segment " + r.name + " exists", {{"name", r.name}});
        }
        throw RequestError(ErrorCode::io_error, fd.error().message(), {{"name", r.name}});
    }
    Segment s;
    s.size = r.size;
    s.mode = r.mode;
    s.created_at_ms = common::now_unix_ms();
    struct stat st {};
    ::fstat(fd->get(), &st);
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.fd = std::move(*fd);
    SegmentRow row{r.name,
                   static_cast<uint64_t>(s.dev),
                   static_cast<uint64_t>(s.ino),
                   s.size,
                   s.mode,
                   s.created_at_ms,
                   "",
                   0,
                   0,
                   0};
    if (r.lease) {
        auto lease = lease_for(r.name, *r.lease, r.session);
        if (!lease) {
            ::unlink(common::shm::path_of(r.name).c_str());
            throw RequestError(ErrorCode::unknown_id, lease.error().message(), {{"pid", r.lease->pid}});
        }
        s.lease = *lease;
        s.pid = r.lease->pid;
        switch (r.lease->kind) {
            case LeaseSpec::Kind::process:
                row.lease = "process";
                row.pid = r.lease->pid;
                row.pid_start = common::process_start_time(r.lease->pid).value_or(0);
                break;
            case LeaseSpec::Kind::connection:
                row.lease = "connection";
                break;
            case LeaseSpec::Kind::ttl:
                row.lease = "ttl";
                row.expires_at_ms = s.created_at_ms + r.lease->ttl.count();
                break;
        }
    }
    s.journaled = true;
    std::string name = r.name;
    segments_[name] = std::move(s);
    // Durable before acknowledged, as a submit: a crash after the answer finds the segment in the journal.
    std::optional<size_t> items = r.items;
    store_.put_segment(row, [this, name, responder, items](const common::Result<void>& written) {
        guarded(responder, [&] {
            auto it = segments_.find(name);
            if (!written) {
                if (it != segments_.end()) {
                    it->second.journaled = false;
                    drop(name, true);
                }
                responder->error(ErrorCode::io_error,
                                 "could not record segment " + name + ": " + written.error().message());
                return;
            }
            if (it == segments_.end()) {
                responder->error(ErrorCode::unknown_id, "segment " + name + " was removed meanwhile",
                                 {{"name", name}});
                return;
            }
            json made = describe(name, it->second);
            if (items) {
                made["items"] = *items;
            }
            responder->result(std::move(made));
        });
    });
}

void SegmentRegistry::restore(const std::vector<SegmentRow>& rows) {
    int64_t now = common::now_unix_ms();
    size_t kept = 0, gone = 0;
    for (const SegmentRow& row : rows) {
        std::string path = common::shm::path_of(row.name);
        struct stat st {};
        bool same = ::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_dev) == row.dev &&
                    static_cast<uint64_t>(st.st_ino) == row.ino;
        if (!same) {
            store_.delete_segment(row.name);  // vanished while the daemon was away
            ++gone;
            continue;
        }
        std::optional<LeaseSpec> lease;
        bool ended = false;
        if (row.lease == "process") {
            auto started = common::process_start_time(static_cast<int>(row.pid));
            ended = !started || *started != row.pid_start;
            lease = LeaseSpec{LeaseSpec::Kind::process, static_cast<pid_t>(row.pid), {}};
        } else if (row.lease == "ttl") {
            ended = row.expires_at_ms <= now;
            lease = LeaseSpec{LeaseSpec::Kind::ttl, static_cast<pid_t>(row.pid),
                              std::chrono::milliseconds(std::max<int64_t>(row.expires_at_ms - now, 1))};
        } else if (row.lease == "connection") {
            ended = true;  // no connection outlives the daemon
        }
        Segment s;
        s.size = row.size;
        s.mode = static_cast<mode_t>(row.mode);
        s.created_at_ms = row.created_at_ms;
        s.dev = static_cast<dev_t>(row.dev);
        s.ino = static_cast<ino_t>(row.ino);
        s.pid = static_cast<pid_t>(row.pid);
        s.journaled = true;
        auto fd = common::shm::open_segment(row.name, O_RDONLY);
        if (fd) {
            s.fd = std::move(*fd);
        }
        segments_[row.name] = std::move(s);
        if (lease && !ended) {
            auto id = lease_for(row.name, *lease, nullptr);
            ended = !id;
            if (id) {
                segments_[row.name].lease = *id;
            }
        }
        if (ended || !segments_[row.name].fd) {
            drop(row.name, true);
            ++gone;
        } else {
            ++kept;
        }
    }
    if (!rows.empty()) {
        spdlog::info(
            "journal: {} shared-memory segment(s) taken back, {} unlinked or gone (their lease ended "
            "while the daemon was away)",
            kept, gone);
    }
}

json SegmentRegistry::unlink(const std::string& name) {
    mappings_.forget(name);
    bool registered = live(name) != nullptr;
    if (registered) {
        drop(name, true);
        return {{"name", name}, {"registered", true}};
    }
    if (::unlink(common::shm::path_of(name).c_str()) != 0) {
        if (errno == ENOENT) {
            throw RequestError(ErrorCode::unknown_id, "no segment " + name, {{"name", name}});
        }
        throw RequestError(ErrorCode::io_error,
                           "unlink " + common::shm::path_of(name) + ": " + std::strerror(errno),
                           {{"name", name}});
    }
    return {{"name", name}, {"registered", false}};
}

json SegmentRegistry::list(bool all) {
    json out = json::array();
    std::vector<std::string> names;
    for (const auto& [name, s] : segments_) {
        names.push_back(name);
    }
    for (const auto& name : names) {
        if (Segment* s = live(name)) {
            out.push_back(describe(name, *s));
        }
    }
    if (!all) {
        return out;
    }
    DIR* dir = ::opendir(common::shm::k_dir);
    if (dir == nullptr) {
        return out;
    }
    while (const dirent* e = ::readdir(dir)) {
        std::string name = e->d_name;
        struct stat st {};
        if (name == "." || name == ".." || segments_.contains(name) ||
            ::lstat(common::shm::path_of(name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        out.push_back({{"name", name},
                       {"path", common::shm::path_of(name)},
                       {"size", static_cast<uint64_t>(st.st_size)},
                       {"mode", mode_text(st.st_mode)},
                       {"uid", st.st_uid},
                       {"registered", false}});
    }
    ::closedir(dir);
    return out;
}

json SegmentRegistry::info(const std::string& name) {
    common::UniqueFd fd = open_or_throw(name, O_RDONLY);
    struct stat st {};
    ::fstat(fd.get(), &st);
    json j;
    if (Segment* s = live(name); s != nullptr && s->ino == st.st_ino) {
        j = describe(name, *s);
    } else {
        j = {{"name", name}, {"path", common::shm::path_of(name)}, {"registered", false}};
    }
    j["size"] = static_cast<uint64_t>(st.st_size);
    j["mode"] = mode_text(st.st_mode);
    j["uid"] = st.st_uid;
    j["attached"] = mapping_pids(common::shm::path_of(name), st.st_ino);
    return j;
}

json SegmentRegistry::read(const std::string& name, uint64_t offset, std::optional<uint64_t> length) {
    common::UniqueFd fd = open_or_throw(name, O_RDONLY);
    uint64_t size = size_of(fd.get());
    if (offset > size) {
        proto::throw_invalid_params("params.offset: past the end of segment " + name + " (" +
                                    std::to_string(size) + " bytes)");
    }
    uint64_t n = length.value_or(size - offset);
    if (offset + n > size) {
        proto::throw_invalid_params("params.length: past the end of segment " + name + " (" +
                                    std::to_string(size) + " bytes)");
    }
    if (n > k_max_transfer) {
        proto::throw_invalid_params("params.length: at most " + std::to_string(k_max_transfer) +
                                    " bytes a request (read in pieces, or map the segment)");
    }
    std::string data(n, '\0');
    ssize_t got = ::pread(fd.get(), data.data(), n, static_cast<off_t>(offset));
    if (got != static_cast<ssize_t>(n)) {
        throw RequestError(ErrorCode::io_error,
                           "read " + common::shm::path_of(name) + ": " + std::strerror(errno),
                           {{"name", name}});
    }
    return {{"name", name}, {"offset", offset}, {"data", common::base64_encode(data)}};
}

json SegmentRegistry::write(const std::string& name, uint64_t offset, const std::string& data) {
    common::UniqueFd fd = open_or_throw(name, O_RDWR);
    uint64_t size = size_of(fd.get());
    if (offset > size || data.size() > size - offset) {
        proto::throw_invalid_params("params.data: " + std::to_string(data.size()) + " bytes at offset " +
                                    std::to_string(offset) + " pass the end of segment " + name + " (" +
                                    std::to_string(size) + " bytes); nothing was written");
    }
    ssize_t put = ::pwrite(fd.get(), data.data(), data.size(), static_cast<off_t>(offset));
    if (put != static_cast<ssize_t>(data.size())) {
        throw RequestError(ErrorCode::io_error,
                           "write " + common::shm::path_of(name) + ": " + std::strerror(errno),
                           {{"name", name}});
    }
    return {{"name", name}, {"offset", offset}, {"written", data.size()}};
}

namespace {

[[noreturn]] void not_a_list(const std::string& name, const common::Error& e) {
    throw RequestError(ErrorCode::invalid_state, "segment " + name + ": " + e.message(), {{"name", name}});
}

}  // namespace

MappingCache::View SegmentRegistry::mapped(const std::string& name, bool writable) {
    auto v = mappings_.map(name, writable);
    if (!v) {
        throw_open_error(name, v.error());
    }
    return *v;
}

json SegmentRegistry::list_get(const std::string& name, std::optional<int64_t> index) {
    std::string_view image = as_view(mapped(name, false));
    if (index) {
        auto n = common::shm::list_length(image);
        if (!n) {
            not_a_list(name, n.error());
        }
        auto v = common::shm::list_get(image, *index);
        if (!v) {
            if (v.error().context.starts_with("index ")) {
                proto::throw_invalid_params("params.index: " + v.error().message());
            }
            not_a_list(name, v.error());
        }
        return {{"name", name}, {"index", *index}, {"value", proto::list_value_to_json(*v)}};
    }
    auto items = common::shm::list_items(image);
    if (!items) {
        not_a_list(name, items.error());
    }
    json values = json::array();
    for (const auto& v : *items) {
        values.push_back(proto::list_value_to_json(v));
    }
    return {{"name", name}, {"values", values}};
}

json SegmentRegistry::list_set(const std::string& name, int64_t index, const common::shm::ListValue& value) {
    MappingCache::View m = mapped(name, true);
    if (auto n = common::shm::list_length(as_view(m)); !n) {
        not_a_list(name, n.error());
    }
    if (auto r = common::shm::list_set(m.data, m.size, index, value); !r) {
        if (r.error().context.starts_with("not a ShareableList")) {
            not_a_list(name, r.error());
        }
        proto::throw_invalid_params(
            (r.error().context.starts_with("index ") ? "params.index: " : "params.value: ") +
            r.error().message());
    }
    return {{"name", name}, {"index", index}, {"value", proto::list_value_to_json(value)}};
}

void SegmentRegistry::unlink_leased() {
    std::vector<std::string> names;
    for (const auto& [name, s] : segments_) {
        if (s.lease) {
            names.push_back(name);
        }
    }
    for (const auto& name : names) {
        drop(name, true);
    }
    if (!names.empty()) {
        spdlog::info("stopping: {} shared-memory segment(s) unlinked (those made with persist stay)",
                     names.size());
    }
}

}  // namespace mpctl::daemon
