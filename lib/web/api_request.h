// Reading the HTTP API's requests: pure functions from a request's body, path and query to
// validated values. Each failure is an Error whose `field` names the input at fault, which the
// API answers as {"error": "...", "field": "..."} with status 400. Nothing here touches a socket
// or the store (webhook.cpp routes, and does the work).
#pragma once

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "config/config.h"
#include "intake/submission.h"
#include "store/suppression.h"

namespace bulkmail {

// Whether a Content-Type names JSON: absent (a client that did not say), or application/json in
// any case and with any parameters ("Application/JSON; charset=UTF-8").
bool is_json_media_type(std::string_view content_type);

// A body that is one JSON object (parse_json_strict: no key twice anywhere) holding only
// `allowed` fields.
Result<nlohmann::json> read_json_object(std::string_view body,
                                        std::initializer_list<std::string_view> allowed);

// A text field of `object`: nullopt when absent or null, its text when a string; anything else is
// an error naming it.
Result<std::optional<std::string>> text_field(const nlohmann::json& object, std::string_view name);
// As text_field, but absent or null is an error too.
Result<std::string> required_text_field(const nlohmann::json& object, std::string_view name);

// POST /api/v1/messages: {"category", "to", "vars", "campaign"}. Only the shape is read here;
// validate_submission judges the values.
Result<Submission> submission_from_json(const nlohmann::json& body);

// POST /api/v1/suppressions: {"email", "category", "reason"}, the category one of `config`'s (or
// absent: all mail), the reason manual when absent. Its source is "api".
Result<Suppression> suppression_from_json(const nlohmann::json& body, const Config& config);

// GET|DELETE /api/v1/suppressions/<email>?category=...&force=true
struct SuppressionTarget {
  std::string address;   // normalized
  std::string category;  // empty: the all-mail suppression
  bool force = false;    // DELETE of an opt-out with renewed consent
};
Result<SuppressionTarget> suppression_target(std::string_view encoded_address,
                                             std::string_view query, const Config& config);

// The campaign a path segment names (GET /api/v1/campaigns/<name>, POST .../<name>/pause): %XX
// escapes decoded ('+' stays '+'), then a name check_campaign_name accepts. The error names the
// field "campaign".
Result<std::string> campaign_segment(std::string_view encoded_name);

}  // namespace bulkmail
