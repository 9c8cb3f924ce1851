#include "web/api_request.h"

#include "base/address.h"
#include "base/json_strict.h"
#include "compose/vars.h"
#include "web/form_data.h"

namespace bulkmail {

using json = nlohmann::json;

bool is_json_media_type(std::string_view content_type) {
  return content_type.empty() || media_type(content_type) == "application/json";
}

Result<json> read_json_object(std::string_view body,
                              std::initializer_list<std::string_view> allowed) {
  auto parsed = parse_json_strict(body);
  // A duplicate key's error names it: which of two values was meant is not ours to guess.
  if (!parsed) return parsed.error();
  json object = std::move(parsed).value();
  if (!object.is_object()) return make_error("not a JSON object");
  for (auto& [key, value] : object.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (!known) return field_error(key, "unknown field");
  }
  return object;
}

Result<std::optional<std::string>> text_field(const json& object, std::string_view name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return field_error(std::string(name), "must be text");
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::string> required_text_field(const json& object, std::string_view name) {
  auto v = text_field(object, name);
  if (!v) return v.error();
  if (!*v) return field_error(std::string(name), "is required");
  return std::move(**v);
}

namespace {
Result<Vars> vars_field(const json& object, std::string_view name) {
  Vars vars;
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return vars;
  if (!it->is_object()) return field_error(std::string(name), "must be an object");
  for (auto& [k, v] : it->items()) {
    auto text = json_scalar_text(v);
    if (!text)
      return field_error(std::string(name) + "." + k, "must be text, a number or true/false");
    vars.insert_or_assign(k, std::move(*text));
  }
  return vars;
}
}  // namespace

Result<Submission> submission_from_json(const json& body) {
  Submission sub;
  auto category = required_text_field(body, "category");
  if (!category) return category.error();
  auto to = required_text_field(body, "to");
  if (!to) return to.error();
  auto campaign = text_field(body, "campaign");
  if (!campaign) return campaign.error();
  auto vars = vars_field(body, "vars");
  if (!vars) return vars.error();
  sub.category = std::move(*category);
  sub.to = std::move(*to);
  sub.campaign = campaign->value_or("");
  sub.vars = std::move(*vars);
  return sub;
}

namespace {
// A category named by a request: empty (all mail) or one of the config's.
Result<std::string> known_category(std::optional<std::string> category, const Config& config) {
  std::string c = std::move(category).value_or("");
  if (!c.empty() && !config.category(c)) return field_error("category", "unknown category");
  return c;
}
}  // namespace

Result<Suppression> suppression_from_json(const json& body, const Config& config) {
  auto email = required_text_field(body, "email");
  if (!email) return email.error();
  auto category = text_field(body, "category");
  if (!category) return category.error();
  auto reason_text = text_field(body, "reason");
  if (!reason_text) return reason_text.error();
  auto address = parse_address(*email);
  if (!address) return field_error("email", address.error().message);
  auto known = known_category(std::move(*category), config);
  if (!known) return known.error();
  std::string r = reason_text->value_or("");
  auto reason = parse_suppression_reason(r.empty() ? "manual" : r);
  if (!reason) return field_error("reason", "must be one of " + suppression_reason_list());
  return Suppression{address->str(), std::move(*known), *reason, "api", 0};
}

Result<SuppressionTarget> suppression_target(std::string_view encoded_address,
                                             std::string_view query, const Config& config) {
  auto raw = percent_decode(encoded_address, false);
  if (!raw) return field_error("email", raw.error().message);
  auto address = parse_address(*raw);
  if (!address) return field_error("email", address.error().message);
  auto category = known_category(query_value(query, "category"), config);
  if (!category) return category.error();
  return SuppressionTarget{address->str(), std::move(*category),
                           query_value(query, "force") == "true"};
}

Result<std::string> campaign_segment(std::string_view encoded_name) {
  auto name = percent_decode(encoded_name, false);
  if (!name) return field_error("campaign", name.error().message);
  if (auto named = check_campaign_name(*name); !named)
    return field_error("campaign", named.error().message);
  return std::move(*name);
}

}  // namespace bulkmail
