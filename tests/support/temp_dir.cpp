#include "temp_dir.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace mpctl::test {

TempDir::TempDir() {
    // Under $TMPDIR when it is set (.ci/run points it at a directory of its own, so that it can find what
    // the tests left there), else /tmp.
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && base[0] == '/' ? base : "/tmp") + "/mpt-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
        throw std::runtime_error("mkdtemp " + tmpl + " failed");
    }
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream out(p, std::ios::binary);
    out << content;
    return p;
}

}  // namespace mpctl::test
