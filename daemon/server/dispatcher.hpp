#pragma once
// Dispatcher: where a session hands each request it has read. The server knows nothing of the methods;
// commands/registry.hpp implements this with the method table. Loop thread only.

#include <memory>

#include <mpctl/proto/jsonrpc.hpp>

namespace mpctl::daemon {

class Session;

class Dispatcher {
  public:
    virtual ~Dispatcher() = default;
    // Answers REQUEST on SESSION, now or later (through a Responder), and never throws.
    virtual void dispatch(const std::shared_ptr<Session>& session, proto::Request request) = 0;
};

}  // namespace mpctl::daemon
