#pragma once
// Registry: the method table and the single dispatch choke point. Unknown methods, malformed params and
// every exception a handler throws become JSON-RPC errors here; the daemon keeps serving.
//
// A handler answers through its Responder, now or later: a handler that parks a request (task.wait)
// keeps the shared_ptr<Responder> and answers when the event comes. Loop thread only.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include <mpctl/daemon/server/peer.hpp>
#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/jsonrpc.hpp>
#include <mpctl/proto/params.hpp>

namespace mpctl::daemon {

class Session;

class Responder {
  public:
    Responder(std::weak_ptr<Session> session, nlohmann::json id, bool is_notification);
    ~Responder();
    Responder(const Responder&) = delete;
    Responder& operator=(const Responder&) = delete;

    // The final answer; only the first one counts.
    void result(nlohmann::json result);
    // The same with the result already encoded as JSON text (large answers: task lists).
    void result_text(std::string_view result);
    void error(proto::ErrorCode code, const std::string& message, nlohmann::json data = nullptr);
    void error(const proto::RequestError& e) { error(e.code(), e.what(), e.data()); }
    // A notification on the same connection before the final answer (streams).
    void notify(std::string_view method, nlohmann::json params);
    // The same with the whole notification already encoded as one line (hot paths).
    void notify_line(std::string line);

    [[nodiscard]] bool answered() const noexcept { return answered_; }
    [[nodiscard]] bool connected() const;
    [[nodiscard]] std::shared_ptr<Session> session() const { return session_.lock(); }

    // Runs FN if the client disconnects before the answer; removed once answered. One per responder.
    void on_disconnect(std::function<void()> fn);

  private:
    void send(const nlohmann::json& message);
    void drop_hook();

    std::weak_ptr<Session> session_;
    nlohmann::json id_;
    bool is_notification_;
    bool answered_ = false;
    uint64_t close_hook_ = 0;
};

struct Call {
    const proto::Request& request;
    proto::Params params;
    std::shared_ptr<Responder> responder;
    const PeerCredentials& peer;
};

class Registry {
  public:
    using Handler = std::function<void(Call&)>;

    void add(std::string method, Handler handler);
    void dispatch(const std::shared_ptr<Session>& session, proto::Request request);
    [[nodiscard]] std::vector<std::string> methods() const;

  private:
    std::unordered_map<std::string, Handler> handlers_;
};

// Runs FN (a deferred continuation of a handler) and turns what it throws into RESPONDER's error, as
// dispatch does for the synchronous part.
void guarded(const std::shared_ptr<Responder>& responder, const std::function<void()>& fn);

}  // namespace mpctl::daemon
