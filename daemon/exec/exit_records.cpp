#include <unistd.h>

#include <mpctl/daemon/exec/exit_records.hpp>

namespace mpctl::daemon {

namespace {

constexpr uint64_t k_late_clone_seconds = 5;

}  // namespace

bool started_as_recorded(uint64_t recorded, uint64_t actual) {
    static const auto hz = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
    return recorded != 0 && actual + 1 >= recorded && actual <= recorded + k_late_clone_seconds * hz;
}

std::optional<int> ExitRecords::wait_status(int pid, uint64_t start_ticks) {
    if (auto status = find(pid, start_ticks)) {
        return status;
    }
    auto fresh = journal_.read_new();
    records_.insert(records_.end(), fresh.begin(), fresh.end());
    return fresh.empty() ? std::nullopt : find(pid, start_ticks);
}

std::optional<int> ExitRecords::find(int pid, uint64_t start_ticks) const {
    // The newest first: a pid that came round again within the window is not worth a thought, but the
    // latest record is the one the supervisor wrote for the process still being asked about.
    for (auto it = records_.rbegin(); it != records_.rend(); ++it) {
        if (it->pid == pid && started_as_recorded(start_ticks, it->start_ticks)) {
            return it->wait_status;
        }
    }
    return std::nullopt;
}

void ExitRecords::clear() {
    journal_.clear();
    records_.clear();
}

}  // namespace mpctl::daemon
