// A streaming RFC 4180 CSV reader: quoted fields (with "" for a quote, and line breaks inside
// quotes), CRLF or LF line ends, a UTF-8 byte-order mark. Memory stays bounded by the longest
// record, never the file.
#pragma once

#include <cstddef>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace bulkmail {

class CsvReader {
 public:
  explicit CsvReader(std::istream& in) : buf_(in.rdbuf()) {}

  struct Record {
    std::vector<std::string> fields;
    std::size_t line = 0;  // the line the record starts on, 1-based
    std::string error;     // non-empty: the record is malformed and its fields are not usable
  };

  // Reads the next record, skipping blank lines. Returns false at the end of the input. A
  // malformed record comes back with `error` set, and reading resumes on the next line.
  bool next(Record& out);

  static constexpr std::size_t kMaxRecordBytes = 1 << 20;

 private:
  int get();
  int peek() { return buf_ ? buf_->sgetc() : std::char_traits<char>::eof(); }
  void skip_rest_of_line();

  std::streambuf* buf_;
  std::size_t line_ = 1;
  bool started_ = false;
};

}  // namespace bulkmail

namespace bulkmail {
// One CSV field as RFC 4180 writes it: quoted (with quotes doubled) when it holds a comma, a
// quote or a line break.
std::string csv_escape(std::string_view field);
}  // namespace bulkmail
