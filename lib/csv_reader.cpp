#include "csv_reader.h"

namespace bulkmail {
namespace {
constexpr int kEof = std::char_traits<char>::eof();
}

int CsvReader::get() {
  if (!buf_) return kEof;
  int c = buf_->sbumpc();
  if (c == '\n') ++line_;
  return c;
}

void CsvReader::skip_rest_of_line() {
  int c;
  while ((c = get()) != kEof && c != '\n') {
  }
}

bool CsvReader::next(Record& out) {
  out.fields.clear();
  out.error.clear();
  if (!started_) {
    started_ = true;
    // A UTF-8 byte-order mark, as spreadsheet programs write it.
    if (peek() == 0xEF) {
      get();
      if (get() != 0xBB || get() != 0xBF) {
        out.line = 1;
        out.error = "the file starts with a broken byte-order mark";
        skip_rest_of_line();
        return true;
      }
    }
  }
  // Skip blank lines.
  while (true) {
    int c = peek();
    if (c == kEof) return false;
    if (c == '\n') {
      get();
      continue;
    }
    if (c == '\r') {
      get();
      continue;
    }
    break;
  }
  out.line = line_;
  std::size_t bytes = 0;
  std::string field;
  while (true) {
    field.clear();
    int c = peek();
    if (c == '"') {
      get();
      std::size_t quote_line = line_;
      while (true) {
        c = get();
        if (c == kEof) {
          out.error =
              "a quoted field opened on line " + std::to_string(quote_line) + " is never closed";
          return true;
        }
        if (c == '"') {
          if (peek() == '"') {
            get();
            field += '"';
            continue;
          }
          break;
        }
        field += static_cast<char>(c);
        if (++bytes > kMaxRecordBytes) {
          out.error = "the record is longer than 1 MiB (an unclosed quote?)";
          skip_rest_of_line();
          return true;
        }
      }
      c = peek();
      if (c != ',' && c != '\n' && c != '\r' && c != kEof) {
        out.error = "text after a closing quote in field " + std::to_string(out.fields.size() + 1);
        skip_rest_of_line();
        return true;
      }
    } else {
      while ((c = peek()) != ',' && c != '\n' && c != '\r' && c != kEof) {
        get();
        if (c == '"') {
          out.error = "a quote inside an unquoted field " + std::to_string(out.fields.size() + 1) +
                      " (quote the whole field and double the quote)";
          skip_rest_of_line();
          return true;
        }
        field += static_cast<char>(c);
        if (++bytes > kMaxRecordBytes) {
          out.error = "the record is longer than 1 MiB";
          skip_rest_of_line();
          return true;
        }
      }
    }
    out.fields.push_back(field);
    c = get();
    if (c == ',') continue;
    if (c == '\r') {
      if (peek() == '\n') {
        get();
      } else if (peek() != kEof) {
        out.error = "a lone carriage return ends field " + std::to_string(out.fields.size());
        skip_rest_of_line();
      }
    }
    return true;  // '\n', '\r\n' or the end of the input ends the record
  }
}

}  // namespace bulkmail

namespace bulkmail {
std::string csv_escape(std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}
}  // namespace bulkmail
