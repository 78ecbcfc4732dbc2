#pragma once
// DaemonControl: what the daemon family (daemon.*) may ask of the daemon itself: its status, a stop and an
// upgrade.
// The Daemon implements it; the handlers see nothing else of it. Loop thread only.

#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/proto/errors.hpp>

namespace mpctl::daemon {

struct StopRequest {
    bool now = false;             // terminate running tasks (recorded as cancelled)
    bool cancel_pending = false;  // cancel queued tasks too
    std::optional<double> kill_after_s;
    std::shared_ptr<Responder> responder;  // answered just before the daemon exits
};

class DaemonControl {
  public:
    virtual ~DaemonControl() = default;
    virtual void request_stop(StopRequest request) = 0;
    // Answers RESPONDER, then execs the daemon's binary in place (tasks untouched). Throws a RequestError
    // (invalid_state) when it cannot, and the daemon serves on. Refused where there is no binary to exec
    // (the fuzzers' world stands in for a daemon).
    virtual void request_upgrade(std::shared_ptr<Responder> /*responder*/) {
        throw proto::RequestError(proto::ErrorCode::invalid_state, "this daemon cannot be upgraded");
    }
    // daemon.status's answer.
    [[nodiscard]] virtual nlohmann::json info() = 0;
};

}  // namespace mpctl::daemon
