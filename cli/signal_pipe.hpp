#pragma once
// Signals into a poll loop (`mpctl run` forwarding Ctrl-C, `mpctl map` cancelling): the handler only writes
// the signal's number as one byte into a non-blocking self-pipe; the loop polls its read end and handles
// the signals in order, outside of signal context.

#include <initializer_list>
#include <vector>

namespace mpctl::cli {

// Installs the handler for SIGNALS (once per process) and returns the pipe's read end. Throws CliError.
int install_signal_pipe(std::initializer_list<int> signals);

// The signals that arrived since the last call, oldest first (empty if none).
[[nodiscard]] std::vector<int> take_signals(int read_fd);

}  // namespace mpctl::cli
