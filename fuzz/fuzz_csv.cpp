// The CSV reader, on files from other departments.
//
// Properties: it ends, with records in line order; no record exceeds the bound; a record read
// back from its own fields written out (csv_escape) is the same record; a malformed record costs
// that record only (reading goes on after it); the import's errors about the same bytes are
// printable.
#include <sstream>
#include <string>
#include <vector>

#include "base/text.h"
#include "fuzz_check.h"
#include "intake/csv_reader.h"
#include "intake/record_reader.h"

using namespace bulkmail;

namespace {

std::string write_record(const std::vector<std::string>& fields) {
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) line += ',';
    line += csv_escape(fields[i]);
  }
  return line + "\r\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::istringstream in{std::string(fuzz::text(data, size))};
  CsvReader reader(in);
  std::size_t last_line = 0;
  std::size_t records = 0;
  while (auto r = reader.next()) {
    FUZZ_CHECK(++records <= size + 1);  // each record, good or bad, consumes input
    FUZZ_CHECK(reader.line() > last_line);
    last_line = reader.line();
    if (!*r) {
      FUZZ_CHECK(!r->error().message.empty());
      continue;
    }
    const auto& fields = r->value().fields;
    FUZZ_CHECK(!fields.empty());
    std::size_t bytes = 0;
    for (const auto& f : fields) bytes += f.size();
    FUZZ_CHECK(bytes <= CsvReader::kMaxRecordBytes);
    // A lone empty field is a blank line, which the reader skips: nothing to compare.
    if (fields.size() == 1 && fields[0].empty()) continue;
    // After a first line, so that a field starting with a byte-order mark's bytes is a field.
    std::istringstream again{"x\r\n" + write_record(fields)};
    CsvReader back(again);
    FUZZ_CHECK(back.next());
    auto copy = back.next();
    FUZZ_CHECK(copy && *copy);
    FUZZ_CHECK(copy->value().fields == fields);
    FUZZ_CHECK(!back.next());
  }
  FUZZ_CHECK(reader.read_status());

  // The import's view of the same bytes: a header naming the columns, then rows of them. What it
  // says of a bad header or row goes to the operator's terminal: printable.
  std::istringstream again{std::string(fuzz::text(data, size))};
  auto rows = RowReader::open(again, ImportFormat::csv);
  while (auto row = rows->next()) {
    if (!*row) {
      FUZZ_CHECK(!has_control_chars(row->error().message));
      continue;
    }
    FUZZ_CHECK(rows->columns_from_header());
  }
  return 0;
}
