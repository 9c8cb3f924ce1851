#include "intake/csv_reader.h"

namespace bulkmail {
namespace {
constexpr int kEof = std::char_traits<char>::eof();
}

int CsvReader::get() {
  int c;
  if (replay_pos_ < replay_.size()) {
    c = static_cast<unsigned char>(replay_[replay_pos_++]);
    if (replay_pos_ == replay_.size()) {
      replay_.clear();
      replay_pos_ = 0;
    }
  } else {
    if (!buf_) return kEof;
    try {
      c = buf_->sbumpc();
    } catch (const std::ios_base::failure& e) {  // a folder, an I/O error
      read_status_ = make_error(e.code().message());
      buf_ = nullptr;
      return kEof;
    }
    if (c == kEof) return kEof;
  }
  if (capturing_) captured_.push_back(static_cast<char>(c));
  if (c == '\n') {
    ++line_;
    // A record that runs past its first line keeps what follows, to read again if it is bad.
    if (in_record_) capturing_ = true;
  }
  return c;
}

int CsvReader::peek() {
  if (replay_pos_ < replay_.size()) return static_cast<unsigned char>(replay_[replay_pos_]);
  if (!buf_) return kEof;
  try {
    return buf_->sgetc();
  } catch (const std::ios_base::failure& e) {
    read_status_ = make_error(e.code().message());
    buf_ = nullptr;
    return kEof;
  }
}

void CsvReader::skip_rest_of_line() {
  int c;
  while ((c = get()) != kEof && c != '\n') {
  }
}

void CsvReader::abandon(std::size_t start) {
  in_record_ = false;
  if (!capturing_) {
    skip_rest_of_line();
    return;
  }
  // Read again everything after the record's first line, then whatever was still to be replayed.
  capturing_ = false;
  captured_.append(replay_, replay_pos_, std::string::npos);
  replay_.swap(captured_);
  replay_pos_ = 0;
  captured_.clear();
  line_ = start + 1;
}

bool CsvReader::skip_byte_order_mark() {
  if (peek() != 0xEF) return true;
  get();
  return get() == 0xBB && get() == 0xBF;
}

bool CsvReader::skip_blank_lines() {
  while (true) {
    int c = peek();
    if (c == kEof) return false;
    if (c != '\n' && c != '\r') return true;
    get();
  }
}

Result<void> CsvReader::read_quoted_field(std::string& field, std::size_t& bytes,
                                          std::size_t number) {
  get();  // the opening quote
  std::size_t quote_line = line_;
  while (true) {
    int c = get();
    if (c == kEof) {
      return make_error("a quoted field opened on line " + std::to_string(quote_line) +
                        " is never closed");
    }
    if (c == '"') {
      if (peek() != '"') break;
      get();
      field += '"';
      continue;
    }
    field += static_cast<char>(c);
    if (++bytes > kMaxRecordBytes) {
      return make_error("a quoted field opened on line " + std::to_string(quote_line) +
                        " runs past 1 MiB (is its closing quote missing?)");
    }
  }
  int c = peek();
  if (c != ',' && c != '\n' && c != '\r' && c != kEof) {
    return make_error("text after a closing quote in field " + std::to_string(number));
  }
  return {};
}

Result<void> CsvReader::read_unquoted_field(std::string& field, std::size_t& bytes,
                                            std::size_t number) {
  int c;
  while ((c = peek()) != ',' && c != '\n' && c != '\r' && c != kEof) {
    get();
    if (c == '"') {
      return make_error("a quote inside an unquoted field " + std::to_string(number) +
                        " (quote the whole field and double the quote)");
    }
    field += static_cast<char>(c);
    if (++bytes > kMaxRecordBytes) return make_error("the record is longer than 1 MiB");
  }
  return {};
}

Error CsvReader::malformed(std::string why) {
  if (capturing_) why += "; reading resumes on line " + std::to_string(record_line_ + 1);
  abandon(record_line_);
  return make_error(std::move(why));
}

std::optional<Result<CsvReader::Record>> CsvReader::next() {
  if (!started_) {
    started_ = true;
    if (!skip_byte_order_mark()) {
      record_line_ = 1;
      skip_rest_of_line();
      return make_error("the file starts with a broken byte-order mark");
    }
  }
  if (!skip_blank_lines()) return std::nullopt;
  record_line_ = line_;
  in_record_ = true;
  capturing_ = false;
  captured_.clear();
  Record out;
  out.line = record_line_;
  std::size_t bytes = 0;
  std::string field;
  while (true) {
    field.clear();
    std::size_t number = out.fields.size() + 1;
    auto read = peek() == '"' ? read_quoted_field(field, bytes, number)
                              : read_unquoted_field(field, bytes, number);
    if (!read) return malformed(read.error().message);
    out.fields.push_back(field);
    int c = get();
    if (c == ',') continue;
    if (c == '\r') {
      if (peek() == '\n') {
        get();
      } else if (peek() != kEof) {
        return malformed("a lone carriage return ends field " + std::to_string(number));
      }
    }
    in_record_ = false;  // '\n', '\r\n' or the end of the input ends the record
    capturing_ = false;
    return out;
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
