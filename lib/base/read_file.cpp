#include "base/read_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>

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

}  // namespace bulkmail
