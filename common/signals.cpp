#include <algorithm>
#include <array>
#include <cctype>
#include <signal.h>
#include <utility>

#include <mpctl/common/signals.hpp>

namespace mpctl::common {

namespace {

constexpr std::array<std::pair<const char*, int>, 31> k_signals{{
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},   {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},     {"KILL", SIGKILL}, {"USR1", SIGUSR1},
    {"SEGV", SIGSEGV},     {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},   {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU}, {"URG", SIGURG},     {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"PWR", SIGPWR},
    {"SYS", SIGSYS},
}};

}  // namespace

std::optional<int> parse_signal(const std::string& text) {
    if (text.empty()) {
        return std::nullopt;
    }
    if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) {
        if (text.size() > 3) {
            return std::nullopt;
        }
        int n = std::stoi(text);
        if (n < 1 || n > SIGRTMAX) {
            return std::nullopt;
        }
        return n;
    }
    std::string upper;
    upper.reserve(text.size());
    for (unsigned char c : text) {
        upper.push_back(static_cast<char>(std::toupper(c)));
    }
    if (upper.starts_with("SIG")) {
        upper.erase(0, 3);
    }
    for (const auto& [name, number] : k_signals) {
        if (upper == name) {
            return number;
        }
    }
    return std::nullopt;
}

std::string signal_name(int signo) {
    for (const auto& [name, number] : k_signals) {
        if (number == signo) {
            return std::string("SIG") + name;
        }
    }
    return "SIG" + std::to_string(signo);
}

}  // namespace mpctl::common
