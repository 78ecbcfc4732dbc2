#pragma once
// A task's "input" (bytes its spec carries) as the descriptor its stdin is: an anonymous memory file
// (memfd) holding them, at offset 0. Each attempt gets a fresh one, so a retry reads them from the start, as
// it would reread a stdin file. Linux: memfd_create(2).

#include <string_view>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::daemon {

[[nodiscard]] common::Result<common::UniqueFd> input_fd(std::string_view bytes);

}  // namespace mpctl::daemon
