#pragma once
// UnitTempDir: a fresh directory under /tmp (mkdtemp) for unit tests that touch files, removed with
// everything in it on destruction. The unit test binary does not link the e2e support library, so this is a
// header-only twin of tests/support/temp_dir.hpp.

#include <filesystem>
#include <stdexcept>
#include <stdlib.h>
#include <string>
#include <system_error>

namespace mpctl::test {

class UnitTempDir {
  public:
    UnitTempDir() {
        char tmpl[] = "/tmp/mpctl-unit-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = tmpl;
    }
    ~UnitTempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    UnitTempDir(const UnitTempDir&) = delete;
    UnitTempDir& operator=(const UnitTempDir&) = delete;

    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::string operator/(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

}  // namespace mpctl::test
