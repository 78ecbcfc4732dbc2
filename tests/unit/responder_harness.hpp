#pragma once
// Responders whose answers a unit test can read. A Caller is one client: a real Session over one end of a
// socketpair, with a Responder for one request on it; the test hands that Responder to the code under test
// (nothing is dispatched: the Session is never started) and reads what the Session wrote from the other
// end, after running the loop's ready handlers. leave() is the client disconnecting (Session::close runs
// the close hooks, and the Responder is no longer connected()).

#include <cerrno>
#include <memory>
#include <string>
#include <sys/socket.h>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/server/dispatcher.hpp>
#include <mpctl/daemon/server/responder.hpp>
#include <mpctl/daemon/server/session.hpp>
#include <mpctl/proto/errors.hpp>
#include <mpctl/proto/jsonrpc.hpp>

namespace mpctl::test::responders {

// A session's dispatcher that is never called (the sessions are never started).
class NullDispatcher final : public mpctl::daemon::Dispatcher {
  public:
    void dispatch(const std::shared_ptr<mpctl::daemon::Session>& /*session*/,
                  mpctl::proto::Request /*request*/) override {}
};

// One client connection: the daemon's end (a Session) and the client's end, with what it received.
struct Connection {
    std::shared_ptr<mpctl::daemon::Session> session;
    mpctl::common::UniqueFd peer;
    std::string partial;             // bytes received after the last '\n'
    std::vector<std::string> lines;  // every whole line received, in order, without its '\n'

    // Reads what the client's end holds; whether anything came.
    bool drain() {
        bool any = false;
        char buffer[16384];
        for (;;) {
            ssize_t n = ::recv(peer.get(), buffer, sizeof buffer, MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                return any;  // nothing more now (EAGAIN), or the daemon's end closed
            }
            any = true;
            partial.append(buffer, static_cast<size_t>(n));
            for (size_t nl = partial.find('\n'); nl != std::string::npos; nl = partial.find('\n')) {
                lines.push_back(partial.substr(0, nl));
                partial.erase(0, nl + 1);
            }
        }
    }
};

class Wire;

// One client with one request outstanding: its Responder, and what the client received.
class Caller {
  public:
    Caller(Wire& wire, std::shared_ptr<Connection> connection, std::shared_ptr<mpctl::daemon::Responder> r)
        : wire_(&wire), connection_(std::move(connection)), responder_(std::move(r)) {}

    [[nodiscard]] const std::shared_ptr<mpctl::daemon::Responder>& responder() const { return responder_; }

    // Every line received so far (the loop run first).
    [[nodiscard]] const std::vector<std::string>& lines() const;
    // The same, parsed.
    [[nodiscard]] std::vector<nlohmann::json> messages() const {
        std::vector<nlohmann::json> out;
        for (const auto& line : lines()) {
            out.push_back(nlohmann::json::parse(line));
        }
        return out;
    }
    // Whether the final answer (a message with an id) has arrived.
    [[nodiscard]] bool answered() const {
        for (const auto& m : messages()) {
            if (m.contains("id")) {
                return true;
            }
        }
        return false;
    }
    // The final answer's line as it was written (values kept as their text); REQUIREs exactly one.
    [[nodiscard]] std::string answer_line() const {
        std::string found;
        int n = 0;
        for (const auto& line : lines()) {
            if (nlohmann::json::parse(line).contains("id")) {
                found = line;
                ++n;
            }
        }
        INFO("the caller received: " << joined());
        REQUIRE(n == 1);
        return found;
    }
    [[nodiscard]] nlohmann::json answer() const { return nlohmann::json::parse(answer_line()); }
    // The result of the answer; REQUIREs a result.
    [[nodiscard]] nlohmann::json result() const {
        nlohmann::json a = answer();
        INFO("answer: " << a.dump());
        REQUIRE(a.contains("result"));
        return a["result"];
    }
    // The error of the answer; REQUIREs an error.
    [[nodiscard]] mpctl::proto::ErrorCode error_code() const {
        nlohmann::json a = answer();
        INFO("answer: " << a.dump());
        REQUIRE(a.contains("error"));
        return mpctl::proto::error_code_from_int(a["error"]["code"].get<int>());
    }
    [[nodiscard]] nlohmann::json error_data() const {
        nlohmann::json a = answer();
        INFO("answer: " << a.dump());
        REQUIRE(a.contains("error"));
        return a["error"]["data"];
    }
    [[nodiscard]] std::string error_message() const {
        nlohmann::json a = answer();
        INFO("answer: " << a.dump());
        REQUIRE(a.contains("error"));
        return a["error"]["message"].get<std::string>();
    }
    // The notifications received (messages with a method), in order.
    [[nodiscard]] std::vector<nlohmann::json> notifications() const {
        std::vector<nlohmann::json> out;
        for (auto& m : messages()) {
            if (m.contains("method")) {
                out.push_back(std::move(m));
            }
        }
        return out;
    }
    // The lines received, one per line (for messages).
    [[nodiscard]] std::string joined() const {
        std::string out;
        for (const auto& line : connection_->lines) {
            out += line + "\n";
        }
        return out;
    }

    // The client disconnects: the session closes and runs its close hooks.
    void leave() const;

  private:
    Wire* wire_;
    std::shared_ptr<Connection> connection_;
    std::shared_ptr<mpctl::daemon::Responder> responder_;
};

// The loop and the connections. Declared before what the Callers' Responders are handed to, so that it
// outlives it: its destructor does not close the sessions (closing would run close hooks into code that is
// gone), it drops them.
class Wire {
  public:
    Wire() = default;
    ~Wire() {
        pump();
        for (auto& c : connections_) {
            c->session.reset();
        }
        pump();
    }
    Wire(const Wire&) = delete;
    Wire& operator=(const Wire&) = delete;

    // A new client, connected, with a Responder for a request (not a notification).
    Caller caller() {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        auto c = std::make_shared<Connection>();
        c->peer.reset(fds[1]);
        asio::local::stream_protocol::socket socket(io);
        socket.assign(asio::local::stream_protocol(), fds[0]);
        c->session = std::make_shared<mpctl::daemon::Session>(std::move(socket), dispatcher_,
                                                              mpctl::daemon::PeerCredentials{});
        auto r = std::make_shared<mpctl::daemon::Responder>(c->session, std::to_string(next_id_++), false);
        connections_.push_back(c);
        return Caller(*this, std::move(c), std::move(r));
    }

    // A Responder whose client has gone already (no session): connected() is false, nothing it answers is
    // seen but answered().
    static std::shared_ptr<mpctl::daemon::Responder> gone() {
        return std::make_shared<mpctl::daemon::Responder>(std::weak_ptr<mpctl::daemon::Session>(), "0",
                                                          false);
    }

    // Runs the loop's ready handlers and reads every client's end, until neither does anything.
    void pump() {
        for (int round = 0; round < 1000; ++round) {
            io.restart();
            size_t ran = io.poll();
            bool read = false;
            for (auto& c : connections_) {
                read = c->drain() || read;
            }
            if (ran == 0 && !read) {
                return;
            }
        }
        FAIL("the loop never went idle");
    }

    asio::io_context io;

  private:
    NullDispatcher dispatcher_;
    std::vector<std::shared_ptr<Connection>> connections_;
    int next_id_ = 1;
};

inline const std::vector<std::string>& Caller::lines() const {
    wire_->pump();
    return connection_->lines;
}

inline void Caller::leave() const {
    connection_->session->close();
    wire_->pump();
}

// What F throws (it must throw a RequestError): what a handler's refusal carries.
template <class F>
mpctl::proto::RequestError refusal(F&& f) {
    try {
        f();
    } catch (const mpctl::proto::RequestError& e) {
        return e;
    }
    FAIL("no RequestError was thrown");
    return mpctl::proto::RequestError(mpctl::proto::ErrorCode::internal_error, "unreachable");
}

}  // namespace mpctl::test::responders
