// Whether the file system holding a path has room left: a full disk makes SQLite say "disk I/O
// error" when it cannot even create its shared-memory file, so the programs look for themselves
// before they tell an operator what failed.
#pragma once

#include <cstdint>
#include <filesystem>

namespace bulkmail {

// True when the file system holding `path` (a file or a folder; for a file that does not exist
// yet, its folder) has less than `margin` bytes left for an unprivileged writer. False when that
// cannot be told.
bool no_space_left(const std::filesystem::path& path, std::uintmax_t margin = 64 * 1024);

}  // namespace bulkmail
