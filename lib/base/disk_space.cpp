#include "base/disk_space.h"

#include <sys/statvfs.h>

namespace bulkmail {

bool no_space_left(const std::filesystem::path& path, std::uintmax_t margin) {
  std::error_code ec;
  std::filesystem::path where = std::filesystem::exists(path, ec) ? path : path.parent_path();
  if (where.empty()) where = ".";
  struct statvfs fs {};
  if (::statvfs(where.c_str(), &fs) != 0) return false;
  return static_cast<std::uintmax_t>(fs.f_bavail) * fs.f_frsize < margin;
}

}  // namespace bulkmail
