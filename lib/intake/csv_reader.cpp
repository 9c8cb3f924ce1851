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
      read_error_ = e.code().message();
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
    read_error_ = e.code().message();
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

std::string CsvReader::read_quoted_field(std::string& field, std::size_t& bytes,
                                         std::size_t number) {
  get();  // the opening quote
  std::size_t quote_line = line_;
  while (true) {
    int c = get();
    if (c == kEof) {
      return "a quoted field opened on line " + std::to_string(quote_line) + " is never closed";
    }
    if (c == '"') {
      if (peek() != '"') break;
      get();
      field += '"';
      continue;
    }
    field += static_cast<char>(c);
    if (++bytes > kMaxRecordBytes) {
      return "a quoted field opened on line " + std::to_string(quote_line) +
             " runs past 1 MiB (is its closing quote missing?)";
    }
  }
  int c = peek();
  if (c != ',' && c != '\n' && c != '\r' && c != kEof) {
    return "text after a closing quote in field " + std::to_string(number);
  }
  return "";
}

std::string CsvReader::read_unquoted_field(std::string& field, std::size_t& bytes,
                                           std::size_t number) {
  int c;
  while ((c = peek()) != ',' && c != '\n' && c != '\r' && c != kEof) {
    get();
    if (c == '"') {
      return "a quote inside an unquoted field " + std::to_string(number) +
             " (quote the whole field and double the quote)";
    }
    field += static_cast<char>(c);
    if (++bytes > kMaxRecordBytes) return "the record is longer than 1 MiB";
  }
  return "";
}

bool CsvReader::malformed(Record& out, std::string why) {
  if (capturing_) why += "; reading resumes on line " + std::to_string(out.line + 1);
  out.error = std::move(why);
  abandon(out.line);
  return true;
}

bool CsvReader::next(Record& out) {
  out.fields.clear();
  out.error.clear();
  if (!started_) {
    started_ = true;
    if (!skip_byte_order_mark()) {
      out.line = 1;
      out.error = "the file starts with a broken byte-order mark";
      skip_rest_of_line();
      return true;
    }
  }
  if (!skip_blank_lines()) return false;
  out.line = line_;
  in_record_ = true;
  capturing_ = false;
  captured_.clear();
  std::size_t bytes = 0;
  std::string field;
  while (true) {
    field.clear();
    std::size_t number = out.fields.size() + 1;
    std::string problem = peek() == '"' ? read_quoted_field(field, bytes, number)
                                        : read_unquoted_field(field, bytes, number);
    if (!problem.empty()) return malformed(out, std::move(problem));
    out.fields.push_back(field);
    int c = get();
    if (c == ',') continue;
    if (c == '\r') {
      if (peek() == '\n') {
        get();
      } else if (peek() != kEof) {
        return malformed(out, "a lone carriage return ends field " + std::to_string(number));
      }
    }
    in_record_ = false;  // '\n', '\r\n' or the end of the input ends the record
    capturing_ = false;
    return true;
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
