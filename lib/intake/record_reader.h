// Rows of an import file, CSV or JSON Lines, as named fields with their line numbers: what
// `bulkmailctl import` and `bulkmailctl suppress import` read.
#pragma once

#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace bulkmail {

enum class ImportFormat { csv, jsonl };

// .jsonl and .ndjson are JSON Lines; anything else is CSV.
ImportFormat format_for_path(std::string_view path);

struct Row {
  std::size_t line = 0;                                     // where the row starts, 1-based
  std::vector<std::pair<std::string, std::string>> fields;  // in file order; JSON nulls left out

  const std::string* field(std::string_view name) const;
};

class RowReader {
 public:
  virtual ~RowReader() = default;
  // The next row, or why it is rejected ("not valid JSON"); nullopt at the end of the input, and
  // after a fatal error (see stopped()).
  virtual std::optional<Result<Row>> next() = 0;
  // Where the row or error next() last returned starts, 1-based: the line a rejection names.
  virtual std::size_t line() const = 0;
  // True once next() has returned a fatal error: the file cannot be read further (a bad CSV
  // header, a failed read), so the import stops there, and next() returns nullopt from then on.
  virtual bool stopped() const = 0;
  // True when every row has the same columns, named once in a header (CSV).
  virtual bool columns_from_header() const = 0;
  static std::unique_ptr<RowReader> open(std::istream& in, ImportFormat format);
};

}  // namespace bulkmail
