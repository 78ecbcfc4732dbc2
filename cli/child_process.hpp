#pragma once
// Running a command in mpctl's own process group, as system(3) does, for `mpctl lock run` (which holds
// a lock while its command runs, with no daemon task in between): the terminal's Ctrl-C and Ctrl-\ reach
// the command directly, so mpctl ignores them while it waits (it must outlive the command: the lock is
// held through its connection); SIGTERM and SIGHUP sent to mpctl are passed on to the command.

#include <string>
#include <vector>

namespace mpctl::cli {

// Runs ARGV (looked up in PATH) with EXTRA_ENV added to mpctl's environment ("K=V" each), waits for it,
// and returns what a shell would make of its end: its exit code, 128+N for signal N, 127 when it is not
// found, 126 when it cannot be executed (then a message was printed).
int run_child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env);

}  // namespace mpctl::cli
