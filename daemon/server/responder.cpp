#include <spdlog/spdlog.h>

#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/daemon/server/session.hpp>
#include <mpctl/proto/jsonrpc.hpp>

namespace mpctl::daemon {

using proto::ErrorCode;

Responder::Responder(std::weak_ptr<Session> session, std::string id_text, bool is_notification)
    : session_(std::move(session)), id_text_(std::move(id_text)), is_notification_(is_notification) {}

Responder::~Responder() {
    drop_hook();
}

void Responder::send_line(std::string line) {
    if (auto s = session_.lock()) {
        s->send(std::move(line));
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
        send_line(proto::encode_result_line(id_text_, result));
    }
    drop_hook();
}

void Responder::result_text(std::string_view result) {
    if (answered_) {
        return;
    }
    answered_ = true;
    if (!is_notification_) {
        send_line(proto::encode_result_text_line(id_text_, result));
    }
    drop_hook();
}

void Responder::error(ErrorCode code, const std::string& message, nlohmann::json data) {
    if (answered_) {
        return;
    }
    answered_ = true;
    if (!is_notification_) {
        send_line(proto::encode_error_line(id_text_, code, message, std::move(data)));
    }
    drop_hook();
}

void Responder::notify(std::string_view method, nlohmann::json params) {
    if (!answered_) {
        send_line(proto::encode_line(proto::make_notification(method, std::move(params))));
    }
}

void Responder::notify_line(std::string line) {
    if (answered_) {
        return;
    }
    send_line(std::move(line));
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
