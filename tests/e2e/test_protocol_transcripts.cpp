// Replays the example sessions of proto/transcripts/ against a real daemon, so the protocol's
// documentation stays true. Format (see proto/PROTOCOL.md): "> line" is sent as is, "< json" is the next
// line expected back; in expected lines "<int>", "<string>", "<time>" and "<any>" match values that vary,
// ${TMP} is a scratch directory, and ${RUN} a word unique to this run (for names of the machine's own, such
// as shared-memory segments, which two runs at once must not share).

#include <filesystem>
#include <fstream>
#include <regex>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"

using namespace mpctl::test;
using nlohmann::json;

namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
        s.replace(pos, from.size(), to);
    }
    return s;
}

// Empty if ACTUAL matches EXPECTED, else where and why not.
std::string describe_mismatch(const json& expected, const json& actual, const std::string& path) {
    if (expected.is_string()) {
        const auto& e = expected.get_ref<const std::string&>();
        if (e == "<any>") {
            return {};
        }
        if (e == "<int>") {
            return actual.is_number_integer() ? std::string()
                                              : path + ": expected an integer, got " + actual.dump();
        }
        if (e == "<string>") {
            return actual.is_string() ? std::string() : path + ": expected a string, got " + actual.dump();
        }
        if (e == "<time>") {
            static const std::regex rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
            return actual.is_string() && std::regex_match(actual.get<std::string>(), rfc3339)
                       ? std::string()
                       : path + ": expected an RFC 3339 time, got " + actual.dump();
        }
    }
    if (expected.is_object()) {
        if (!actual.is_object()) {
            return path + ": expected an object, got " + actual.dump();
        }
        for (const auto& [k, v] : expected.items()) {
            if (!actual.contains(k)) {
                return path + "." + k + ": missing";
            }
            if (auto m = describe_mismatch(v, actual[k], path + "." + k); !m.empty()) {
                return m;
            }
        }
        for (const auto& [k, v] : actual.items()) {
            if (!expected.contains(k)) {
                return path + "." + k + ": not documented in the transcript (value " + v.dump() + ")";
            }
        }
        return {};
    }
    if (expected.is_array()) {
        if (!actual.is_array() || actual.size() != expected.size()) {
            return path + ": expected " + expected.dump() + ", got " + actual.dump();
        }
        for (size_t i = 0; i < expected.size(); ++i) {
            if (auto m = describe_mismatch(expected[i], actual[i], path + "[" + std::to_string(i) + "]");
                !m.empty()) {
                return m;
            }
        }
        return {};
    }
    return expected == actual ? std::string()
                              : path + ": expected " + expected.dump() + ", got " + actual.dump();
}

void replay(const std::filesystem::path& file) {
    DaemonFixture d;
    TempDir scratch;
    auto conn = d.connect();
    const std::string run_word = "t" + std::to_string(::getpid()) + "-" + std::to_string(d.pid());
    std::ifstream in(file);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (line.empty() || line[0] == '#') {
            continue;
        }
        std::string body =
            replace_all(replace_all(line.substr(2), "${TMP}", scratch.path()), "${RUN}", run_word);
        INFO(file.filename().string() << ":" << number << ": " << line);
        if (line.starts_with("> ")) {
            conn->send_raw(body + "\n");
        } else if (line.starts_with("< ")) {
            auto got = conn->read_line();
            REQUIRE(got.has_value());
            INFO("got: " << *got);
            json actual = json::parse(*got, nullptr, false);
            REQUIRE_FALSE(actual.is_discarded());
            CHECK(describe_mismatch(json::parse(body), actual, "$") == "");
        } else {
            FAIL("a transcript line starts with '> ', '< ' or '#'");
        }
    }
    // Nothing unexpected is left on the wire, and the daemon still serves.
    CHECK_FALSE(conn->read_line(std::chrono::milliseconds(50)).has_value());
    CHECK(d.connect()->call("daemon.status", json::object()).contains("result"));
}

}  // namespace

TEST_CASE("every protocol transcript replays against a real daemon", "[e2e][protocol]") {
    std::filesystem::path dir = std::filesystem::path(MPCTL_TEST_SOURCE_DIR) / "proto" / "transcripts";
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() >= 3);
    for (const auto& f : files) {
        DYNAMIC_SECTION(f.filename().string()) {
            replay(f);
        }
    }
}
