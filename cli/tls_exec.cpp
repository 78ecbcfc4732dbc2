// The static mpctl's side of tls_transport.hpp: it has no OpenSSL, and hands a command for a remote daemon
// over to mpctl-tls, installed beside it, which has.

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/tls_transport.hpp>
#include <mpctl/common/paths.hpp>

namespace mpctl::cli {

void hand_over_to_tls(char** argv) {
    std::string dir = common::executable_dir();
    std::string tls = (dir.empty() ? std::string(".") : dir) + "/mpctl-tls";
    // Same arguments, same environment, same descriptors: nothing has been read or written yet.
    ::execv(tls.c_str(), argv);
    throw CliError(exit_code::failure,
                   "a remote daemon is reached through mpctl-tls, installed beside mpctl: "
                   "cannot run " +
                       tls + ": " + std::strerror(errno));
}

std::unique_ptr<Transport> connect_tls(const TlsTarget& target, std::chrono::steady_clock::time_point) {
    // Not reached: main() hands every remote command over to mpctl-tls first.
    throw CliError(exit_code::failure, "this mpctl has no TLS: run mpctl-tls to reach " + target.address);
}

}  // namespace mpctl::cli
