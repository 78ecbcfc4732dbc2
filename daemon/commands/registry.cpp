#include <algorithm>

#include <spdlog/spdlog.h>

#include <mpctl/daemon/commands/registry.hpp>
#include <mpctl/daemon/server/session.hpp>

namespace mpctl::daemon {

using proto::ErrorCode;

void Registry::add(std::string method, Handler handler) {
    handlers_[std::move(method)] = std::move(handler);
}

std::vector<std::string> Registry::methods() const {
    std::vector<std::string> names;
    for (const auto& [name, handler] : handlers_) {
        names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

void Registry::dispatch(const std::shared_ptr<Session>& session, proto::Request request) {
    auto responder = std::make_shared<Responder>(session, request.id_text, request.is_notification);
    auto it = handlers_.find(request.method);
    if (it == handlers_.end()) {
        responder->error(ErrorCode::method_not_found, "unknown method: " + request.method);
        return;
    }
    if (const auto& remote = session->peer().remote;
        remote && !method_allowed(remote->methods, request.method)) {
        responder->error(ErrorCode::refused,
                         request.method.starts_with("token.")
                             ? "method " + request.method + " is for local clients only"
                             : "method " + request.method + " is not allowed for token " + remote->token,
                         {{"method", request.method}});
        return;
    }
    spdlog::debug("request {} from pid {}", request.method, session->peer().pid);
    guarded(responder, [&] {
        Call call{request, proto::Params(request.params), responder, session->peer()};
        it->second(call);
    });
}

}  // namespace mpctl::daemon
