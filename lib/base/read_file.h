// A whole file into memory, with an error naming the file when it cannot be read (missing, a
// folder, or a read that fails part way).
#pragma once

#include <filesystem>
#include <string>

#include "base/result.h"

namespace bulkmail {

Result<std::string> read_file(const std::filesystem::path& path);

}  // namespace bulkmail
