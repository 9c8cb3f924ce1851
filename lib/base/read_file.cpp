#include "base/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "base/unique_fd.h"

namespace bulkmail {

Result<std::string> read_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return make_error(path.string() + ": is a folder");
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(path.string() + ": cannot read");
  std::string bytes;
  char buf[65536];
  // read() reports a failing device or file system as badbit; streaming rdbuf() into a string
  // would end early and quietly.
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.append(buf, static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) return make_error(path.string() + ": cannot read: " + std::strerror(errno));
  return bytes;
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
  std::string bytes;
  char buf[65536];
  while (bytes.size() < max_bytes) {
    std::size_t want = std::min(sizeof buf, max_bytes - bytes.size());
    ssize_t n = ::read(fd.get(), buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed("cannot read");
    if (n == 0) break;
    bytes.append(buf, static_cast<std::size_t>(n));
  }
  return bytes;
}

}  // namespace bulkmail
