// JSON Lines imports (`bulkmailctl import list.jsonl`): one JSON object a line.
//
// Properties: it ends, with rows in line order; a row names each key once and holds only text;
// written back out as JSON, a row reads back the same; an error text has no control character but
// the tab (it is printed to the operator's terminal, and a key is a stranger's text; printable_line
// keeps tabs, which move a terminal's cursor and nothing else).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>

#include "fuzz_check.h"
#include "intake/record_reader.h"

using namespace bulkmail;

namespace {

bool printable(std::string_view s) {
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::istringstream in{std::string(fuzz::text(data, size))};
  auto reader = RowReader::open(in, ImportFormat::jsonl);
  std::size_t last_line = 0;
  while (auto r = reader->next()) {
    FUZZ_CHECK(reader->line() > last_line);
    last_line = reader->line();
    if (!*r) {
      FUZZ_CHECK(printable(r->error().message));
      continue;
    }
    const Row& row = r->value();
    std::set<std::string> names;
    nlohmann::json object = nlohmann::json::object();
    for (const auto& [name, value] : row.fields) {
      FUZZ_CHECK(names.insert(name).second);
      object[name] = value;
    }
    std::istringstream again{object.dump() + "\n"};  // the parser took only valid UTF-8
    auto back = RowReader::open(again, ImportFormat::jsonl)->next();
    FUZZ_CHECK(back && *back);
    // Keys come back in JSON's order, not the file's: compare as sets of pairs.
    auto sorted = [](std::vector<std::pair<std::string, std::string>> f) {
      std::sort(f.begin(), f.end());
      return f;
    };
    FUZZ_CHECK(sorted(back->value().fields) == sorted(row.fields));
  }
  return 0;
}
