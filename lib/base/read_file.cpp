#include "base/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "base/unique_fd.h"

namespace bulkmail {

Result<std::string> read_file(const std::filesystem::path& path) {
  return read_file_prefix(path, std::numeric_limits<std::size_t>::max());
}

Result<std::string> read_file_prefix(const std::filesystem::path& path, std::size_t max_bytes,
                                     FileKinds kinds) {
  auto failed = [&](const char* what) {
    return make_error(path.string() + ": " + what + ": " + std::strerror(errno));
  };
  int flags = O_RDONLY | O_CLOEXEC;
  // O_NONBLOCK: a FIFO put where a regular file was listed must not hang the open; it changes
  // nothing for a regular file.
  if (kinds == FileKinds::regular) flags |= O_NOFOLLOW | O_NONBLOCK;
  UniqueFd fd(::open(path.c_str(), flags));
  if (!fd) {
    if (kinds == FileKinds::regular && errno == ELOOP) {
      return make_error(path.string() + ": a symbolic link, not a regular file");
    }
    return failed("cannot read");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failed("cannot read");
  if (S_ISDIR(st.st_mode)) return make_error(path.string() + ": is a folder");
  if (kinds == FileKinds::regular && !S_ISREG(st.st_mode)) {
    return make_error(path.string() + ": not a regular file");
  }
  // Read straight into the string, a regular file in one read (and one more that finds its end),
  // anything else 64 KiB at a time.
  std::size_t chunk = 65536;
  if (S_ISREG(st.st_mode))
    chunk = std::max<std::size_t>(static_cast<std::size_t>(st.st_size) + 1, 4096);
  std::string bytes;
  while (bytes.size() < max_bytes) {
    std::size_t have = bytes.size();
    bytes.resize(have + std::min(chunk, max_bytes - have));
    ssize_t n = ::read(fd.get(), bytes.data() + have, bytes.size() - have);
    if (n < 0) {
      if (errno == EINTR) {
        bytes.resize(have);
        continue;
      }
      return failed("cannot read");
    }
    bytes.resize(have + static_cast<std::size_t>(n));
    if (n == 0) break;
  }
  return bytes;
}

}  // namespace bulkmail
