#include <spdlog/spdlog.h>

#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/daemon/server/session.hpp>
#include <mpctl/proto/jsonrpc.hpp>

namespace mpctl::daemon {

using proto::ErrorCode;

Responder::Responder(std::weak_ptr<Session> session, nlohmann::json id, bool is_notification)
    : session_(std::move(session)), id_(std::move(id)), is_notification_(is_notification) {}

Responder::~Responder() {
    drop_hook();
}

void Responder::send(const nlohmann::json& message) {
    if (auto s = session_.lock()) {
        s->send(proto::encode_line(message));
    }
}

void Responder::drop_hook() {
    if (close_hook_ != 0) {
        uint64_t hook = close_hook_;
        close_hook_ = 0;
        if (auto s = session_.lock()) {
            s->remove_close_hook(hook);
        }
    }
}

void Responder::result(nlohmann::json result) {
    if (answered_) {
        return;
    }
    answered_ = true;
    if (!is_notification_) {
        send(proto::make_result(id_, std::move(result)));
    }
    drop_hook();
}

void Responder::result_text(std::string_view result) {
    if (answered_) {
        return;
    }
    answered_ = true;
    if (!is_notification_) {
        if (auto s = session_.lock()) {
            std::string line = R"({"jsonrpc":"2.0","id":)";
            line += id_.dump();
            line += R"(,"result":)";
            line += result;
            line += "}\n";
            s->send(std::move(line));
        }
    }
    drop_hook();
}

void Responder::error(ErrorCode code, const std::string& message, nlohmann::json data) {
    if (answered_) {
        return;
    }
    answered_ = true;
    if (!is_notification_) {
        send(proto::make_error(id_, code, message, std::move(data)));
    }
    drop_hook();
}

void Responder::notify(std::string_view method, nlohmann::json params) {
    if (!answered_) {
        send(proto::make_notification(method, std::move(params)));
    }
}

void Responder::notify_line(std::string line) {
    if (answered_) {
        return;
    }
    if (auto s = session_.lock()) {
        s->send(std::move(line));
    }
}

bool Responder::connected() const {
    auto s = session_.lock();
    return s && !s->closed();
}

void Responder::on_disconnect(std::function<void()> fn) {
    auto s = session_.lock();
    if (!s || answered_) {
        return;
    }
    drop_hook();
    close_hook_ = s->on_close(std::move(fn));
}

void guarded(const std::shared_ptr<Responder>& responder, const std::function<void()>& fn) {
    try {
        fn();
    } catch (const proto::RequestError& e) {
        responder->error(e);
    } catch (const std::exception& e) {
        spdlog::error("internal error: {}", e.what());
        responder->error(ErrorCode::internal_error, std::string("internal error: ") + e.what());
    }
}

}  // namespace mpctl::daemon
