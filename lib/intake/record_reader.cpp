#include "intake/record_reader.h"

#include <nlohmann/json.hpp>

#include <set>

#include "base/json_strict.h"
#include "base/text.h"
#include "compose/vars.h"
#include "intake/csv_reader.h"

namespace bulkmail {
namespace {

// CSV: the first record names the columns; each later record becomes a row of named fields.
class CsvRowReader final : public RowReader {
 public:
  explicit CsvRowReader(std::istream& in) : csv_(in) {}
  bool columns_from_header() const override { return true; }
  std::size_t line() const override { return line_; }
  bool stopped() const override { return stopped_; }

  std::optional<Result<Row>> next() override {
    if (stopped_) return std::nullopt;
    if (!header_read_) {
      header_read_ = true;
      if (auto header = read_header(); !header) return header.error();
    }
    auto rec = csv_.next();
    if (!rec) {
      const Result<void>& read = csv_.read_status();
      if (read) return std::nullopt;
      return stop(csv_.line(), "cannot read the file past this line: " + read.error().message);
    }
    line_ = csv_.line();
    if (!*rec) return make_error("malformed CSV: " + rec->error().message);
    CsvReader::Record& r = **rec;
    if (r.fields.size() != header_.size()) {
      return make_error("malformed CSV: expected " + std::to_string(header_.size()) +
                        " fields as in the header, found " + std::to_string(r.fields.size()));
    }
    Row row;
    row.line = line_;
    row.fields.reserve(header_.size());
    for (std::size_t i = 0; i < header_.size(); ++i)
      row.fields.emplace_back(header_[i], std::move(r.fields[i]));
    return row;
  }

 private:
  // The first record, as the columns' names into header_; every error is fatal.
  Result<void> read_header() {
    auto h = csv_.next();
    if (!h) {
      if (const Result<void>& read = csv_.read_status(); !read)
        return stop(1, "cannot read the file: " + read.error().message);
      return stop(1,
                  "the file is empty: a CSV import starts with a header row naming its columns, "
                  "one of them 'email'");
    }
    if (!*h) return stop(csv_.line(), "the header row is malformed: " + h->error().message);
    std::set<std::string> seen;
    for (const std::string& name : (*h)->fields) {
      std::string n(trim(name));
      if (n.empty()) return stop(csv_.line(), "the header row has an empty column name");
      // The recipient's column however a spreadsheet spelled it: Email, EMAIL, email.
      if (to_lower_ascii(n) == "email") n = "email";
      if (!seen.insert(n).second)
        return stop(csv_.line(), "the header row names column '" + printable_line(n) + "' twice");
      header_.push_back(std::move(n));
    }
    if (!seen.count("email")) {
      // Said once for the file, not once for every row.
      return stop(csv_.line(), "the header row has no 'email' column (the recipient's address)");
    }
    return {};
  }

  // A fatal error on `line`: nothing more is read.
  Error stop(std::size_t line, std::string why) {
    line_ = line;
    stopped_ = true;
    return make_error(std::move(why));
  }

  CsvReader csv_;
  std::vector<std::string> header_;
  std::size_t line_ = 0;
  bool header_read_ = false;
  bool stopped_ = false;
};

// JSON Lines: one object per line; strings, numbers and booleans become fields. A key given twice
// in one row is refused: which of its values was meant cannot be known.
class JsonlRowReader final : public RowReader {
 public:
  // The stream reports a failing read (a folder, an I/O error) as an exception, so that its reason
  // reaches the operator; the caller's mask is restored afterwards.
  explicit JsonlRowReader(std::istream& in) : in_(in), old_exceptions_(in.exceptions()) {
    if (!in_.bad()) in_.exceptions(std::ios::badbit);
  }
  ~JsonlRowReader() override { in_.exceptions(old_exceptions_); }
  bool columns_from_header() const override { return false; }
  std::size_t line() const override { return line_; }
  bool stopped() const override { return stopped_; }

  std::optional<Result<Row>> next() override {
    while (!stopped_) {
      try {
        if (!std::getline(in_, text_)) return std::nullopt;
      } catch (const std::ios_base::failure& e) {  // fatal: reported once, then the end
        stopped_ = true;
        line_ = read_ + 1;
        return make_error("cannot read the file: " + e.code().message());
      }
      ++read_;
      if (read_ == 1 && text_.rfind("\xEF\xBB\xBF", 0) == 0) text_.erase(0, 3);
      if (trim(text_).empty()) continue;
      line_ = read_;
      return parse_row();
    }
    return std::nullopt;
  }

 private:
  // The row that text_, on line_, holds, or why it is rejected.
  Result<Row> parse_row() const {
    auto parsed = parse_json_strict(text_);
    if (!parsed) {
      const std::string& duplicate = parsed.error().field;
      if (duplicate.empty()) return make_error("not valid JSON");
      return make_error("key '" + printable_line(duplicate) +
                        "' is given twice (a row names each key once)");
    }
    const nlohmann::json& j = *parsed;
    if (!j.is_object()) return make_error("not a JSON object");
    Row row;
    row.line = line_;
    for (auto& [k, v] : j.items()) {
      if (v.is_null()) continue;
      auto text = json_scalar_text(v);
      if (!text) {
        return make_error("field '" + printable_line(k) +
                          "' holds an object or array; only text, numbers and true/false are "
                          "allowed");
      }
      row.fields.emplace_back(k, std::move(*text));
    }
    return row;
  }

  std::istream& in_;
  std::ios::iostate old_exceptions_;
  std::string text_;      // the line last read
  std::size_t read_ = 0;  // lines read
  std::size_t line_ = 0;  // where the row or error last returned is
  bool stopped_ = false;
};

}  // namespace

ImportFormat format_for_path(std::string_view path) {
  auto ends = [&](std::string_view ext) {
    return path.size() >= ext.size() &&
           to_lower_ascii(path.substr(path.size() - ext.size())) == ext;
  };
  return ends(".jsonl") || ends(".ndjson") ? ImportFormat::jsonl : ImportFormat::csv;
}

const std::string* Row::field(std::string_view name) const {
  for (const auto& [k, v] : fields) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::unique_ptr<RowReader> RowReader::open(std::istream& in, ImportFormat format) {
  if (format == ImportFormat::jsonl) return std::make_unique<JsonlRowReader>(in);
  return std::make_unique<CsvRowReader>(in);
}

}  // namespace bulkmail
