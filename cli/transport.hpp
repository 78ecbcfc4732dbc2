#pragma once
// Transport: the bytes of one connection to mpctld, as Client reads and writes them. Two kinds: the Unix
// socket (plain_transport, here) and TLS over TCP to a remote daemon (tls_transport.hpp). Client keeps the
// JSON-RPC lines; a transport only moves bytes, and says when some wait inside it where poll() on its
// descriptor cannot see them.

#include <memory>
#include <string>
#include <string_view>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::cli {

class Transport {
  public:
    enum class Read { data, nothing, closed };

    Transport() = default;
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;
    virtual ~Transport() = default;

    // The descriptor to poll for readability.
    [[nodiscard]] virtual int fd() const noexcept = 0;
    // Appends to BUFFER what can be read now, without waiting: data, nothing (yet), or closed (the peer
    // closed the connection, or it failed: error() says how).
    virtual Read read(std::string& buffer) = 0;
    // True when read() would give something at once although poll() on fd() may not say so (bytes already
    // taken off the socket and kept inside the transport, or a connection known to be over).
    [[nodiscard]] virtual bool readable() const noexcept = 0;
    // Writes all of DATA, waiting as long as the peer takes it.
    virtual common::Result<void> write_all(std::string_view data) = 0;
    // What ended the connection, when read() gave closed because of an error (empty: the peer closed it).
    [[nodiscard]] virtual std::string error() const = 0;
};

// The Unix socket FD (a blocking one; reads never wait on it all the same).
[[nodiscard]] std::unique_ptr<Transport> plain_transport(common::UniqueFd fd);

}  // namespace mpctl::cli
