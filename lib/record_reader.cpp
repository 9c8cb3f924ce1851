#include "record_reader.h"

#include <nlohmann/json.hpp>

#include <set>

#include "csv_reader.h"
#include "text.h"
#include "vars.h"

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
      if (!csv_.next(h)) return false;
      if (!h.error.empty()) return fail(row, h.line, "the header row is malformed: " + h.error);
      std::set<std::string> seen;
      for (auto& name : h.fields) {
        std::string n(trim(name));
        if (n.empty()) return fail(row, h.line, "the header row has an empty column name");
        if (!seen.insert(n).second)
          return fail(row, h.line, "the header row names column '" + n + "' twice");
        header_.push_back(std::move(n));
      }
    }
    if (!csv_.next(rec_)) return false;
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
};

// JSON Lines: one object per line; strings, numbers and booleans become fields.
class JsonlRowReader final : public RowReader {
 public:
  explicit JsonlRowReader(std::istream& in) : in_(in) {}
  bool columns_from_header() const override { return false; }

  bool next(Row& row) override {
    row.fields.clear();
    row.error.clear();
    row.fatal = false;
    while (std::getline(in_, line_)) {
      ++n_;
      if (n_ == 1 && line_.rfind("\xEF\xBB\xBF", 0) == 0) line_.erase(0, 3);
      if (trim(line_).empty()) continue;
      row.line = n_;
      auto j = nlohmann::json::parse(line_, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) {
        row.error = "not valid JSON";
        return true;
      }
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
  std::istream& in_;
  std::string line_;
  std::size_t n_ = 0;
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
