#include <poll.h>

#include <asio/post.hpp>
#include <spdlog/spdlog.h>

#include <mpctl/common/sys.hpp>
#include <mpctl/common/time.hpp>
#include <mpctl/daemon/leases/lease_registry.hpp>
#include <mpctl/daemon/server/session.hpp>

namespace mpctl::daemon {

LeaseRegistry::~LeaseRegistry() {
    for (auto& [pid, watch] : processes_) {
        std::error_code ignored;
        watch.pidfd->close(ignored);
    }
    for (auto& [id, lease] : leases_) {
        timers_.cancel(lease.timer);
        if (auto s = lease.session.lock()) {
            s->remove_close_hook(lease.close_hook);
        }
    }
}

common::Result<LeaseRegistry::LeaseId> LeaseRegistry::open(const LeaseSpec& spec,
                                                           const std::shared_ptr<Session>& session,
                                                           std::function<void()> on_end) {
    LeaseId id = next_;
    Lease lease;
    lease.spec = spec;
    lease.on_end = std::move(on_end);
    switch (spec.kind) {
        case LeaseSpec::Kind::process: {
            auto it = processes_.find(spec.pid);
            if (it == processes_.end()) {
                auto fd = common::pidfd_open(spec.pid);
                if (!fd) {
                    return common::plain_error("no process " + std::to_string(spec.pid) + " to lease to (" +
                                               fd.error().message() + ")");
                }
                // A process that has exited but not been reaped yet still has a pid: it is gone all the same.
                pollfd exited{fd->get(), POLLIN, 0};
                if (::poll(&exited, 1, 0) > 0) {
                    return common::plain_error("no process " + std::to_string(spec.pid) +
                                               " to lease to (it has exited)");
                }
                ProcessWatch watch;
                watch.pidfd = std::make_unique<asio::posix::stream_descriptor>(io_, fd->release());
                it = processes_.emplace(spec.pid, std::move(watch)).first;
                pid_t pid = spec.pid;
                // Readable once the process has exited (a zombie counts): every lease it has ends then.
                it->second.pidfd->async_wait(asio::posix::stream_descriptor::wait_read,
                                             [this, pid](const std::error_code& ec) {
                                                 if (ec == asio::error::operation_aborted) {
                                                     return;
                                                 }
                                                 if (ec) {
                                                     spdlog::error("pidfd of {}: {}", pid, ec.message());
                                                 }
                                                 process_ended(pid);
                                             });
            }
            it->second.leases.emplace(id, true);
            break;
        }
        case LeaseSpec::Kind::connection:
            if (!session || session->closed()) {
                return common::plain_error("the connection to lease to is closed");
            }
            lease.session = session;
            lease.close_hook = session->on_close([this, id] { end(id); });
            break;
        case LeaseSpec::Kind::ttl:
            lease.expires_at_ms = common::now_unix_ms() + spec.ttl.count();
            lease.timer = timers_.start(spec.ttl, [this, id] {
                if (auto it = leases_.find(id); it != leases_.end()) {
                    it->second.timer = 0;
                    end(id);
                }
            });
            break;
    }
    ++next_;
    leases_.emplace(id, std::move(lease));
    return id;
}

std::function<void()> LeaseRegistry::close(LeaseId id) {
    auto it = leases_.find(id);
    if (it == leases_.end()) {
        return nullptr;
    }
    Lease lease = std::move(it->second);
    leases_.erase(it);
    if (lease.spec.kind == LeaseSpec::Kind::process) {
        if (auto p = processes_.find(lease.spec.pid); p != processes_.end()) {
            p->second.leases.erase(id);
            if (p->second.leases.empty()) {
                // Nobody follows this process any more: its pidfd goes (the pending wait is aborted).
                std::error_code ignored;
                p->second.pidfd->close(ignored);
                processes_.erase(p);
            }
        }
    }
    if (lease.timer != 0) {
        timers_.cancel(lease.timer);
    }
    if (auto s = lease.session.lock()) {
        s->remove_close_hook(lease.close_hook);
    }
    return std::move(lease.on_end);
}

void LeaseRegistry::release(LeaseId id) {
    (void)close(id);
}

void LeaseRegistry::end(LeaseId id) {
    if (auto on_end = close(id)) {
        on_end();
    }
}

void LeaseRegistry::process_ended(pid_t pid) {
    auto it = processes_.find(pid);
    if (it == processes_.end()) {
        return;
    }
    std::vector<LeaseId> ids;
    for (const auto& [id, unused] : it->second.leases) {
        ids.push_back(id);
    }
    spdlog::debug("process {} exited: {} lease(s) end", pid, ids.size());
    for (LeaseId id : ids) {
        end(id);  // the last one closes the pidfd
    }
}

const LeaseSpec* LeaseRegistry::find(LeaseId id) const {
    auto it = leases_.find(id);
    return it == leases_.end() ? nullptr : &it->second.spec;
}

bool LeaseRegistry::follows(LeaseId id, const Session* session) const {
    auto it = leases_.find(id);
    return it != leases_.end() && it->second.spec.kind == LeaseSpec::Kind::connection &&
           it->second.session.lock().get() == session;
}

nlohmann::json LeaseRegistry::describe(LeaseId id) const {
    auto it = leases_.find(id);
    if (it == leases_.end()) {
        return nullptr;
    }
    const Lease& l = it->second;
    nlohmann::json j = {{"pid", l.spec.pid}};
    switch (l.spec.kind) {
        case LeaseSpec::Kind::process:
            j["kind"] = "process";
            break;
        case LeaseSpec::Kind::connection:
            j["kind"] = "connection";
            break;
        case LeaseSpec::Kind::ttl:
            j["kind"] = "ttl";
            j["expires_at"] = common::format_rfc3339_ms(l.expires_at_ms);
            break;
    }
    return j;
}

}  // namespace mpctl::daemon
