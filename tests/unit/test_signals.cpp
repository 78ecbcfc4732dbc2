#include <signal.h>
#include <string>

#include <catch2/catch.hpp>

#include <mpctl/common/signals.hpp>

using mpctl::common::parse_signal;
using mpctl::common::signal_name;

TEST_CASE("signals parse from bare names, SIG names and any letter case", "[unit][signals]") {
    CHECK(parse_signal("TERM") == SIGTERM);
    CHECK(parse_signal("SIGTERM") == SIGTERM);
    CHECK(parse_signal("sigterm") == SIGTERM);
    CHECK(parse_signal("term") == SIGTERM);
    CHECK(parse_signal("SigKill") == SIGKILL);
    CHECK(parse_signal("KILL") == SIGKILL);
    CHECK(parse_signal("hup") == SIGHUP);
    CHECK(parse_signal("INT") == SIGINT);
    CHECK(parse_signal("USR1") == SIGUSR1);
    CHECK(parse_signal("sigusr2") == SIGUSR2);
    CHECK(parse_signal("CONT") == SIGCONT);
    CHECK(parse_signal("STOP") == SIGSTOP);
    CHECK(parse_signal("WINCH") == SIGWINCH);
    CHECK(parse_signal("PIPE") == SIGPIPE);
}

TEST_CASE("signals parse from decimal numbers", "[unit][signals]") {
    CHECK(parse_signal("15") == 15);
    CHECK(parse_signal("9") == 9);
    CHECK(parse_signal("1") == 1);
    CHECK(parse_signal("015") == 15);
    CHECK(parse_signal(std::to_string(SIGRTMAX)) == SIGRTMAX);
    CHECK(parse_signal(std::to_string(SIGRTMIN)) == SIGRTMIN);
}

TEST_CASE("unknown names and out-of-range numbers are refused", "[unit][signals]") {
    for (const char* bad : {"", "SIG", "FOO", "SIGFOO", "TERM ", " TERM", "-15", "+15", "1.5", "15x", "SIG15",
                            "9999", "12345678901234567890"}) {
        INFO(bad);
        CHECK_FALSE(parse_signal(bad));
    }
    CHECK_FALSE(parse_signal(std::to_string(SIGRTMAX + 1)));
}

TEST_CASE("signal_name gives SIG names and SIG<n> for unnamed signals", "[unit][signals]") {
    CHECK(signal_name(SIGTERM) == "SIGTERM");
    CHECK(signal_name(SIGKILL) == "SIGKILL");
    CHECK(signal_name(SIGHUP) == "SIGHUP");
    CHECK(signal_name(SIGSYS) == "SIGSYS");
    CHECK(signal_name(SIGRTMIN + 1) == "SIG" + std::to_string(SIGRTMIN + 1));
}

TEST_CASE("every named signal parses back from its name", "[unit][signals]") {
    for (int sig = 1; sig < SIGRTMIN; ++sig) {
        std::string name = signal_name(sig);
        if (name == "SIG" + std::to_string(sig)) {
            continue;  // no name for it
        }
        INFO(name);
        CHECK(parse_signal(name) == sig);
        CHECK(parse_signal(name.substr(3)) == sig);
    }
}
