#include <algorithm>
#include <string>
#include <vector>

#include <mpctl/daemon/store/integrity.hpp>
#include <mpctl/daemon/store/sqlite_util.hpp>

namespace mpctl::daemon {

namespace {

// How many of quick_check's findings the message quotes: the first ones say where; the rest say more of
// the same.
constexpr int k_findings_quoted = 3;

}  // namespace

common::Result<void> check_integrity(sqlite3* db) {
    sqlite::Query check(db, "PRAGMA quick_check(3)");
    if (!check.ok()) {
        return std::unexpected(sqlite::error(db, "integrity check"));
    }
    std::vector<std::string> findings;
    int rc = 0;
    while ((rc = check.step()) == SQLITE_ROW) {
        // A row can hold several findings, a line each, after a header line naming the database.
        std::string row = sqlite::column_text(check.get(), 0);
        size_t start = 0;
        while (start < row.size()) {
            size_t end = std::min(row.find('\n', start), row.size());
            std::string line = row.substr(start, end - start);
            start = end + 1;
            if (line == "ok" || line == "*** in database main ***" ||
                line == sqlite3_errstr(SQLITE_CORRUPT)) {
                continue;
            }
            if (findings.size() < k_findings_quoted) {
                findings.push_back(std::move(line));
            }
        }
    }
    // A check can also stop at damage it cannot step over (an unreadable schema): that is a finding too.
    if (rc != SQLITE_DONE) {
        common::Error e = sqlite::error(db, "integrity check");
        if (e.code == common::Errc::damaged || findings.empty()) {
            return std::unexpected(std::move(e));
        }
    }
    if (findings.empty()) {
        return {};
    }
    std::string text = "integrity check: " + std::string(sqlite3_errstr(SQLITE_CORRUPT));
    for (size_t i = 0; i < findings.size(); ++i) {
        text += (i == 0 ? " (" : "; ") + findings[i];
    }
    return common::plain_error(text + ")", common::Errc::damaged);
}

}  // namespace mpctl::daemon
