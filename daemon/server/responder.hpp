#pragma once
// Responder: how a handler answers one request, now or later. A handler that parks a request (task.wait,
// a log follower) keeps the shared_ptr<Responder> and answers when its event comes; only the first
// answer counts, and an answer to a client that has gone is dropped. Notifications (streams) go out on
// the same connection before the answer. Loop thread only.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <mpctl/proto/errors.hpp>

namespace mpctl::daemon {

class Session;

class Responder {
  public:
    // ID_TEXT: the request's id as its answer echoes it (proto::Request::id_text).
    Responder(std::weak_ptr<Session> session, std::string id_text, bool is_notification);
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
    void send_line(std::string line);
    void drop_hook();

    std::weak_ptr<Session> session_;
    std::string id_text_;
    bool is_notification_;
    bool answered_ = false;
    uint64_t close_hook_ = 0;
};

// Runs FN, a handler or a deferred continuation of one (a commit's completion, a timer, a task's end),
// and turns what it throws into RESPONDER's error: a RequestError as itself, anything else as an
// internal error, logged. Nothing a handler throws reaches the loop.
void guarded(const std::shared_ptr<Responder>& responder, const std::function<void()>& fn);

}  // namespace mpctl::daemon
