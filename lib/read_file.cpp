#include "read_file.h"

#include <fstream>
#include <sstream>

namespace bulkmail {

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(path.string() + ": cannot read");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return make_error(path.string() + ": cannot read");
  return bytes.str();
}

}  // namespace bulkmail
