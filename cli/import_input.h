// What `import` and `suppress import` share: the file they read, how they report its rows as they
// go, and how they say what was kept when the file could not be read to its end.
#pragma once

#include <fstream>
#include <memory>
#include <string>

#include "intake/importer.h"
#include "intake/record_reader.h"

namespace bulkmail::ctl {

// An import's rows: from FILE, or stdin for "-", as CSV or JSON Lines (`format` "csv" or "jsonl";
// empty: by the file's extension). A folder, or a file that cannot be opened, fails the run.
struct ImportInput {
  std::ifstream file;
  std::unique_ptr<RowReader> rows;
  ImportInput(const std::string& path, const std::string& format);
};

// Options that report each rejected row on stderr ("line N: rejected: why") and, when stderr is a
// terminal, the rows read so far.
ImportOptions import_options();

// After a fatal problem: whether rows read before it were kept.
std::string rows_kept(const ImportSummary& s);

}  // namespace bulkmail::ctl
