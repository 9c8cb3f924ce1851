// Strict JSON for what clients hand bulkmail (API bodies, JSON Lines imports): one document, and
// no object that holds the same key twice. RFC 8259 leaves a repeated key's meaning to the reader
// and readers disagree (nlohmann::json keeps the last, others the first), so a body naming "to"
// twice could mail whichever address the reader picks. bulkmail refuses it instead of guessing.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "base/result.h"

namespace bulkmail {

// Parses `text` as exactly one JSON value (whitespace around it allowed, nothing else). Fails with
//   `duplicate key "vars.first_name"` when an object repeats a key: the path leads to it from the
//     top, object keys joined by '.' and array positions as [i] ("items[2].email"); the error's
//     field is that path, so a caller can name the field itself;
//   `not valid JSON: ...` for anything nlohmann::json::parse refuses (its words: line, column and
//     what it read last).
Result<nlohmann::json> parse_json_strict(std::string_view text);

}  // namespace bulkmail
