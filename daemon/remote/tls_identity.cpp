// OpenSSL's side of the daemon's identity: the key, the certificate, its fingerprint.

#include <cstdio>
#include <filesystem>
#include <memory>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpctl/daemon/remote/tls_identity.hpp>

namespace mpctl::daemon {

namespace {

struct FreeKey {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct FreeCert {
    void operator()(X509* c) const noexcept { X509_free(c); }
};
struct CloseFile {
    void operator()(FILE* f) const noexcept { std::fclose(f); }
};
using Key = std::unique_ptr<EVP_PKEY, FreeKey>;
using Cert = std::unique_ptr<X509, FreeCert>;
using File = std::unique_ptr<FILE, CloseFile>;

common::Error tls_error(const std::string& what) {
    return common::Error{common::Errc::failed, 0, "TLS identity: " + what};
}

common::Result<std::string> fingerprint_of(X509* cert) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(cert, EVP_sha256(), digest, &n) != 1) {
        return std::unexpected(tls_error("cannot digest the certificate"));
    }
    static const char* hex = "0123456789abcdef";
    std::string out = "SHA256:";
    for (unsigned int i = 0; i < n; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0xf];
    }
    return out;
}

// Writes what WRITE puts into a FILE* to PATH (mode MODE), through a temporary file renamed into place.
template <class Write>
common::Result<void> write_pem(const std::string& path, mode_t mode, Write write) {
    std::string tmp = path + ".tmp";
    std::filesystem::remove(tmp);
    mode_t old = ::umask(0777 & ~mode);
    File f(std::fopen(tmp.c_str(), "wx"));
    ::umask(old);
    if (!f) {
        return std::unexpected(tls_error("cannot create " + tmp));
    }
    bool ok = write(f.get()) == 1;
    ok = std::fflush(f.get()) == 0 && ::fsync(::fileno(f.get())) == 0 && ok;
    f.reset();
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::filesystem::remove(tmp);
        return std::unexpected(tls_error("cannot write " + path));
    }
    return {};
}

common::Result<void> create(const std::string& key_path, const std::string& cert_path) {
    Key key(EVP_EC_gen("P-256"));
    Cert cert(X509_new());
    if (!key || !cert) {
        return std::unexpected(tls_error("cannot make a key"));
    }
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) {
        return std::unexpected(tls_error("no randomness for the certificate's serial"));
    }
    serial[0] &= 0x7f;  // a positive serial
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    bool ok = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
    BN_free(bn);
    X509_NAME* name = X509_get_subject_name(cert.get());
    ok = ok && X509_set_version(cert.get(), 2) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
         X509_gmtime_adj(X509_getm_notAfter(cert.get()), 20L * 365 * 24 * 3600) != nullptr &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    reinterpret_cast<const unsigned char*>("mpctld"), -1, -1, 0) == 1 &&
         X509_set_issuer_name(cert.get(), name) == 1 && X509_set_pubkey(cert.get(), key.get()) == 1 &&
         X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
    if (!ok) {
        return std::unexpected(tls_error("cannot make the certificate"));
    }
    if (auto r = write_pem(key_path, 0600,
                           [&](FILE* f) {
                               return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr,
                                                           nullptr);
                           });
        !r) {
        return r;
    }
    return write_pem(cert_path, 0644, [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
}

}  // namespace

common::Result<TlsIdentity> load_or_create_identity(const std::string& state_dir) {
    std::string dir = state_dir + "/tls";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        return std::unexpected(tls_error("cannot make " + dir + ": " + ec.message()));
    }
    ::chmod(dir.c_str(), 0700);
    TlsIdentity id{dir + "/key.pem", dir + "/cert.pem", {}};
    if (!std::filesystem::exists(id.key_path) || !std::filesystem::exists(id.cert_path)) {
        if (auto r = create(id.key_path, id.cert_path); !r) {
            return std::unexpected(r.error());
        }
    }
    File f(std::fopen(id.cert_path.c_str(), "r"));
    if (!f) {
        return std::unexpected(tls_error("cannot read " + id.cert_path));
    }
    Cert cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
    if (!cert) {
        return std::unexpected(tls_error(id.cert_path + " holds no certificate"));
    }
    auto fp = fingerprint_of(cert.get());
    if (!fp) {
        return std::unexpected(fp.error());
    }
    id.fingerprint = std::move(*fp);
    return id;
}

}  // namespace mpctl::daemon
