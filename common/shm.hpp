#pragma once
// POSIX shared-memory segments, Linux: shm_open("/NAME") is open("/dev/shm/NAME"), so a segment is a file
// of /dev/shm and Python's SharedMemory(name="NAME") attaches to what these functions make. No daemon
// needed: the CLI reads and writes segments with these directly.

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>

#include <mpctl/common/result.hpp>
#include <mpctl/common/unique_fd.hpp>

namespace mpctl::common::shm {

inline constexpr const char* k_dir = "/dev/shm";

// NAME as a segment name: a leading '/' (shm_open's spelling) is dropped; then 1 to 255 bytes, without '/'
// or NUL, and not "." or "..". Errc::invalid otherwise.
[[nodiscard]] Result<std::string> normalize_name(std::string_view name);
[[nodiscard]] std::string path_of(const std::string& name);

// Creates segment NAME of SIZE bytes (more than 0) with MODE, all at once: it is made nameless (O_TMPFILE),
// sized and given its mode, and only then linked under its name, which fails if the name is taken
// (err EEXIST): no reader ever sees it half made or 0 bytes long. CONTENT (at most SIZE bytes) is written
// at its start before it is linked. The descriptor is read-write.
[[nodiscard]] Result<UniqueFd> create(const std::string& name, uint64_t size, mode_t mode,
                                      std::string_view content = {});

// Opens existing segment NAME (FLAGS: O_RDONLY or O_RDWR), close-on-exec.
[[nodiscard]] Result<UniqueFd> open_segment(const std::string& name, int flags);

}  // namespace mpctl::common::shm
