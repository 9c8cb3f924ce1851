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

  bool next(Row& row) override {
    row.fields.clear();
    row.error.clear();
    row.fatal = false;
    if (!header_read_) {
      header_read_ = true;
      CsvReader::Record h;
      if (!csv_.next(h)) {
        read_failed_ = !csv_.read_error().empty();
        if (read_failed_) return fail(row, 1, "cannot read the file: " + csv_.read_error());
        return fail(row, 1,
                    "the file is empty: a CSV import starts with a header row naming its "
                    "columns, one of them 'email'");
      }
      if (!h.error.empty()) return fail(row, h.line, "the header row is malformed: " + h.error);
      std::set<std::string> seen;
      for (auto& name : h.fields) {
        std::string n(trim(name));
        if (n.empty()) return fail(row, h.line, "the header row has an empty column name");
        // The recipient's column however a spreadsheet spelled it: Email, EMAIL, email.
        if (to_lower_ascii(n) == "email") n = "email";
        if (!seen.insert(n).second)
          return fail(row, h.line, "the header row names column '" + n + "' twice");
        header_.push_back(std::move(n));
      }
      if (!seen.count("email")) {
        // Said once for the file, not once for every row.
        return fail(row, h.line, "the header row has no 'email' column (the recipient's address)");
      }
    }
    if (!csv_.next(rec_)) {
      if (csv_.read_error().empty() || read_failed_) return false;
      read_failed_ = true;
      return fail(row, rec_.line, "cannot read the file past this line: " + csv_.read_error());
    }
    row.line = rec_.line;
    if (!rec_.error.empty()) {
      row.error = "malformed CSV: " + rec_.error;
      return true;
    }
    if (rec_.fields.size() != header_.size()) {
      row.error = "malformed CSV: expected " + std::to_string(header_.size()) +
                  " fields as in the header, found " + std::to_string(rec_.fields.size());
      return true;
    }
    for (std::size_t i = 0; i < header_.size(); ++i)
      row.fields.emplace_back(header_[i], std::move(rec_.fields[i]));
    return true;
  }

 private:
  static bool fail(Row& row, std::size_t line, std::string why) {
    row.line = line;
    row.error = std::move(why);
    row.fatal = true;
    return true;
  }

  CsvReader csv_;
  CsvReader::Record rec_;
  std::vector<std::string> header_;
  bool header_read_ = false;
  bool read_failed_ = false;
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

  bool next(Row& row) override {
    row.fields.clear();
    row.error.clear();
    row.fatal = false;
    while (read_line(row)) {
      if (row.fatal) return true;
      ++n_;
      if (n_ == 1 && line_.rfind("\xEF\xBB\xBF", 0) == 0) line_.erase(0, 3);
      if (trim(line_).empty()) continue;
      row.line = n_;
      auto parsed = parse_json_strict(line_);
      if (!parsed) {
        const std::string& duplicate = parsed.error().field;
        row.error = duplicate.empty()
                        ? "not valid JSON"
                        : "key '" + duplicate + "' is given twice (a row names each key once)";
        return true;
      }
      const nlohmann::json& j = *parsed;
      if (!j.is_object()) {
        row.error = "not a JSON object";
        return true;
      }
      for (auto& [k, v] : j.items()) {
        if (v.is_null()) continue;
        if (auto text = json_scalar_text(v)) {
          row.fields.emplace_back(k, std::move(*text));
        } else {
          row.error = "field '" + k +
                      "' holds an object or array; only text, numbers and true/false are allowed";
          row.fields.clear();
          return true;
        }
      }
      return true;
    }
    return false;
  }

 private:
  // The next line into line_; false at the end. A failed read is a fatal row, reported once.
  bool read_line(Row& row) {
    if (failed_) return false;
    try {
      return static_cast<bool>(std::getline(in_, line_));
    } catch (const std::ios_base::failure& e) {
      failed_ = true;
      row.line = n_ + 1;
      row.error = "cannot read the file: " + e.code().message();
      row.fatal = true;
      return true;
    }
  }

  std::istream& in_;
  std::ios::iostate old_exceptions_;
  std::string line_;
  std::size_t n_ = 0;
  bool failed_ = false;
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
