// A streaming RFC 4180 CSV reader: quoted fields (with "" for a quote, and line breaks inside
// quotes), CRLF or LF line ends, a UTF-8 byte-order mark. Memory stays bounded by the longest
// record, never the file.
#pragma once

#include <cstddef>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace bulkmail {

class CsvReader {
 public:
  explicit CsvReader(std::istream& in) : buf_(in.rdbuf()) {}

  struct Record {
    std::vector<std::string> fields;
    std::size_t line = 0;  // the line the record starts on, 1-based
  };

  // Reads the next record, skipping blank lines: the record, or why it is malformed. nullopt at
  // the end of the input, or when reading fails (see read_status()). After a malformed record,
  // reading resumes on the line after the one it started on: a stray quote whose field ran over
  // the following lines (to the end of the file, or past kMaxRecordBytes) costs that one record,
  // and every line it ran over is read again as records of its own.
  std::optional<Result<Record>> next();

  // The line the record next() last returned starts on, 1-based, a malformed one's too.
  std::size_t line() const { return record_line_; }

  // Whether the input was read to its end; the error says why it could not be (a folder, an I/O
  // error: "Is a directory").
  const Result<void>& read_status() const { return read_status_; }

  static constexpr std::size_t kMaxRecordBytes = 1 << 20;

 private:
  int get();
  int peek();
  void skip_rest_of_line();
  // Ends a malformed record that started on line `start`, so that reading resumes on line
  // start + 1.
  void abandon(std::size_t start);

  // next's steps, in order.
  // Reads a UTF-8 byte-order mark at the start of the input, as spreadsheet programs write it;
  // false when the input starts with a broken one.
  bool skip_byte_order_mark();
  // Reads past blank lines (LF, CRLF or a lone CR); false at the end of the input.
  bool skip_blank_lines();
  // One field, quoted (from its opening quote: "" stands for a quote, line breaks are kept) or
  // not. Appends its text to `field` and counts it in the record's `bytes` (against
  // kMaxRecordBytes). On success what follows the field (',', a line end or the end of the input)
  // is next to read; the error says why the record is malformed. `number` counts fields from 1.
  Result<void> read_quoted_field(std::string& field, std::size_t& bytes, std::size_t number);
  Result<void> read_unquoted_field(std::string& field, std::size_t& bytes, std::size_t number);
  // Abandons the record being read and returns `why` as its error, adding where reading resumes
  // when that is not the next line.
  Error malformed(std::string why);

  std::streambuf* buf_;
  std::size_t line_ = 1;         // the line get() reads next
  std::size_t record_line_ = 0;  // where the record last returned starts
  bool started_ = false;
  // While a record is read, the bytes it consumed after its first line end: what a malformed
  // multi-line record hands back to be read again. At most about 2 * kMaxRecordBytes.
  bool in_record_ = false;
  bool capturing_ = false;
  std::string captured_;
  std::string replay_;  // bytes to read before the stream's next ones
  std::size_t replay_pos_ = 0;
  Result<void> read_status_;
};

}  // namespace bulkmail

namespace bulkmail {
// One CSV field as RFC 4180 writes it: quoted (with quotes doubled) when it holds a comma, a
// quote or a line break.
std::string csv_escape(std::string_view field);
}  // namespace bulkmail
