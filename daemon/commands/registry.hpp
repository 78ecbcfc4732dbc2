#pragma once
// Registry: the method table and the single dispatch choke point. Unknown methods, malformed params and
// every exception a handler throws become JSON-RPC errors here; the daemon keeps serving.
//
// A handler answers through its Responder (server/responder.hpp), now or later. Loop thread only.

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <mpctl/daemon/server/dispatcher.hpp>
#include <mpctl/daemon/server/peer.hpp>
#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/proto/jsonrpc.hpp>
#include <mpctl/proto/params.hpp>

namespace mpctl::daemon {

// One request as a handler sees it.
struct Call {
    const proto::Request& request;
    proto::Params params;
    std::shared_ptr<Responder> responder;
    const PeerCredentials& peer;
};

class Registry final : public Dispatcher {
  public:
    using Handler = std::function<void(Call&)>;

    void add(std::string method, Handler handler);
    void dispatch(const std::shared_ptr<Session>& session, proto::Request request) override;
    [[nodiscard]] std::vector<std::string> methods() const;

  private:
    std::unordered_map<std::string, Handler> handlers_;
};

}  // namespace mpctl::daemon
