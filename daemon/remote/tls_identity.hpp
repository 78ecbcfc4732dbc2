#pragma once
// TlsIdentity: the daemon's own key and self-signed certificate for remote clients (STATE_DIR/tls/), made on
// first use and kept, and the fingerprint clients pin. There is no certificate authority: a client trusts
// exactly the certificate whose SHA-256 it was given (PROTOCOL.md, "Remote clients").

#include <string>

#include <mpctl/common/result.hpp>

namespace mpctl::daemon {

struct TlsIdentity {
    std::string key_path;     // PEM, mode 0600
    std::string cert_path;    // PEM
    std::string fingerprint;  // "SHA256:" and 64 lowercase hex digits of the certificate's DER
};

// Loads the identity in STATE_DIR/tls, making an EC P-256 key and a certificate for it (valid 20 years,
// subject CN=mpctld) when there is none. Both files are written aside and renamed into place.
[[nodiscard]] common::Result<TlsIdentity> load_or_create_identity(const std::string& state_dir);

}  // namespace mpctl::daemon
