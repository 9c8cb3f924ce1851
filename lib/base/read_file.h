// A file into memory, with an error naming the file when it cannot be read (missing, a folder, or
// a read that fails part way): whole (read_file), or only its start, for input that a reader
// bounds anyway (read_file_prefix).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "base/result.h"

namespace bulkmail {

Result<std::string> read_file(const std::filesystem::path& path);

// What read_file_prefix agrees to open.
enum class FileKinds {
  // Whatever the path leads to, through symbolic links: a regular file, a FIFO (/dev/stdin, a
  // shell's <(...)), a device. A folder is an error.
  any,
  // A regular file at the path itself: a symbolic link is refused (O_NOFOLLOW), and so is a FIFO
  // or a device, without blocking on it. For folders that others can write to, such as a Maildir.
  regular,
};

// At most the first `max_bytes` of a file; what follows is not read. A caller that must know
// whether the file was longer asks for one byte more than it keeps.
Result<std::string> read_file_prefix(const std::filesystem::path& path, std::size_t max_bytes,
                                     FileKinds kinds = FileKinds::any);

}  // namespace bulkmail
