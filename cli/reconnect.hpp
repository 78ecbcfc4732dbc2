#pragma once
// Reconnecting: a command that waits on the daemon (wait, as-completed, result, run once its task is
// submitted, logs --follow, map) and loses its connection (EOF, a reset: the daemon died) connects again and
// asks again for what it does not know yet, instead of failing. A daemon under `mpctld --supervise` comes
// back by itself (its supervisor keeps the socket listening, so the new connection waits in the backlog); one
// stopped on purpose does not, and is never started here: the command fails once the deadline passes.
// Only requests that can be asked twice are asked again: a submit whose answer was lost is never re-sent.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/client.hpp>

namespace mpctl::cli {

class Reconnector {
  public:
    // The deadline: MPCTL_RECONNECT_TIMEOUT seconds if set, else 60.
    explicit Reconnector(const GlobalOptions& global);

    // Gives CLIENT a new connection to the same daemon, retrying with backoff (50 ms doubling to 1 s) until
    // the deadline, which runs from the loss (or from the last one, if nothing came over the connection
    // since). Says once, on stderr, that it does. Past the deadline, throws WHY's exit code with a message
    // saying how long it waited.
    void reconnect(Client& client, const ConnectionLost& why);

  private:
    GlobalOptions global_;
    std::chrono::milliseconds timeout_;
    bool said_ = false;
    std::optional<std::chrono::steady_clock::time_point> outage_since_;
    uint64_t bytes_at_reconnect_ = 0;
};

// Runs ATTEMPT until it ends otherwise than by a lost connection, reconnecting CLIENT before each retry.
// ATTEMPT asks again for what is still unknown (it sees what earlier tries learned).
template <class F>
auto retrying(Client& client, Reconnector& reconnector, F&& attempt) {
    for (;;) {
        try {
            return attempt();
        } catch (const ConnectionLost& e) {
            reconnector.reconnect(client, e);
        }
    }
}

}  // namespace mpctl::cli
