// Rows of an import file, CSV or JSON Lines, as named fields with their line numbers: what
// `bulkmailctl import` and `bulkmailctl suppress import` read.
#pragma once

#include <istream>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bulkmail {

enum class ImportFormat { csv, jsonl };

// .jsonl and .ndjson are JSON Lines; anything else is CSV.
ImportFormat format_for_path(std::string_view path);

struct Row {
  std::size_t line = 0;
  std::vector<std::pair<std::string, std::string>> fields;  // in file order; JSON nulls left out
  std::string error;   // non-empty: this row is rejected for this reason
  bool fatal = false;  // the file cannot be read further (a bad CSV header)

  const std::string* field(std::string_view name) const;
};

class RowReader {
 public:
  virtual ~RowReader() = default;
  // Reads the next row; false at the end of input.
  virtual bool next(Row& row) = 0;
  // True when every row has the same columns, named once in a header (CSV).
  virtual bool columns_from_header() const = 0;
  static std::unique_ptr<RowReader> open(std::istream& in, ImportFormat format);
};

}  // namespace bulkmail
