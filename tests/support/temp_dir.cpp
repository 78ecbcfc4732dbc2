#include "temp_dir.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace mpctl::test {

TempDir::TempDir() {
    char tmpl[] = "/tmp/mpt-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
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
