#include "import_input.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "context.h"

namespace fs = std::filesystem;

namespace bulkmail::ctl {

ImportInput::ImportInput(const std::string& path, const std::string& format) {
  std::istream* in = &std::cin;
  if (path != "-") {
    std::error_code ec;
    if (fs::is_directory(path, ec)) fail("cannot read " + path + ": it is a folder, not a file");
    file.open(path, std::ios::binary);
    if (!file) fail("cannot read " + path + ": " + std::strerror(errno));
    in = &file;
  }
  ImportFormat fmt = format.empty() ? format_for_path(path)
                                    : (format == "jsonl" ? ImportFormat::jsonl : ImportFormat::csv);
  rows = RowReader::open(*in, fmt);
}

ImportOptions import_options() {
  ImportOptions opts;
  opts.on_reject = [](std::size_t line, const std::string& why) {
    std::cerr << "line " << line << ": rejected: " << why << "\n";
  };
  if (isatty(STDERR_FILENO)) {
    opts.on_progress = [](std::int64_t n) { std::cerr << "\r" << n << " rows read" << std::flush; };
  }
  return opts;
}

std::string rows_kept(const ImportSummary& s) {
  return s.queued + s.updated + s.already_queued + s.suppressed > 0 ? " (rows before it were kept)"
                                                                    : "";
}

}  // namespace bulkmail::ctl
