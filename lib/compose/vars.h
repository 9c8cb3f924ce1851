// Template variables carried by a queued message: from `--var KEY=VALUE`, import columns, or the
// HTTP API. Checked when the message is queued, so nothing that could break a header or shadow a
// compliance value is ever stored.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace bulkmail {

using Vars = std::map<std::string, std::string>;

// The names bulkmail fills in itself for every message, the one list of them (the composer gives
// their values in this order). A message may not set them: a variable named postal_address must
// never replace the sender's real address in the footer.
inline constexpr std::array<std::string_view, 6> kBuiltinVars = {
    "unsubscribe_url", "unsubscribe_all_url", "postal_address",
    "organization",    "recipient",           "category_description"};

// True when `name` is one of kBuiltinVars.
bool is_builtin_var(std::string_view name);

// Whether `name` may name a variable: 1-64 letters, digits, '_' or '-', starting with a letter or
// '_', and not a built-in. The error names the variable: "variable 'organization' is filled in by
// bulkmail and cannot be set".
Result<void> check_var_name(std::string_view name);

// Whether `value` may be a variable's value: valid UTF-8, no control characters but line breaks (a
// body may have paragraphs; a value with one is refused where it would reach the Subject header,
// by the template), at most 8 KiB. The error is a predicate for the caller to give its subject:
// "is longer than 8 KiB".
Result<void> check_var_value(std::string_view value);

// "KEY=VALUE" from the command line, checked.
Result<std::pair<std::string, std::string>> parse_var_assignment(std::string_view arg);

// A JSON value as a variable's text: strings as they are, numbers and true/false as JSON writes
// them; nullopt for null, objects and arrays (JSON Lines imports and the HTTP API both use this).
std::optional<std::string> json_scalar_text(const nlohmann::json& value);

// Checks every variable and serializes them as a JSON object for the store. An error names the
// variable at fault as its field ("vars.first_name").
Result<std::string> vars_to_json(const Vars& vars);

// The stored JSON object back to variables (every sender does this for every message).
Result<Vars> vars_from_json(std::string_view json);

}  // namespace bulkmail
