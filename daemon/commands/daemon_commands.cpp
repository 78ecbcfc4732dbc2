// The daemon family: daemon.status, daemon.stop, daemon.upgrade, daemon.methods.

#include <mpctl/daemon/commands/daemon_control.hpp>
#include <mpctl/daemon/commands/families.hpp>
#include <mpctl/daemon/commands/registry.hpp>

namespace mpctl::daemon {

namespace {

void daemon_stop(DaemonControl& d, Call& call) {
    call.params.reject_unknown({"now", "cancel_pending", "kill_after"});
    StopRequest req;
    req.now = call.params.get_or<bool>("now", false);
    req.cancel_pending = call.params.get_or<bool>("cancel_pending", false);
    req.kill_after_s = call.params.optional<double>("kill_after");
    if (req.kill_after_s && (*req.kill_after_s < 0 || *req.kill_after_s > 3600)) {
        proto::throw_invalid_params("params.kill_after: must be between 0 and 3600 seconds");
    }
    req.responder = call.responder;
    d.request_stop(std::move(req));
}

}  // namespace

void register_daemon_commands(Registry& r, DaemonControl& d) {
    r.add("daemon.status", [&d](Call& c) {
        c.params.reject_unknown({});
        c.responder->result(d.info());
    });
    r.add("daemon.stop", [&d](Call& c) { daemon_stop(d, c); });
    r.add("daemon.upgrade", [&d](Call& c) {
        c.params.reject_unknown({});
        d.request_upgrade(c.responder);
    });
    r.add("daemon.methods", [&r](Call& c) {
        c.params.reject_unknown({});
        c.responder->result({{"methods", r.methods()}});
    });
}

}  // namespace mpctl::daemon
