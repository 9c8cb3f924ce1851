#include "submission.h"

namespace bulkmail {

std::string campaign_problem(const std::string& campaign) {
  if (campaign.empty()) return "is empty";
  if (campaign.size() > 100) return "is longer than 100 characters";
  for (char c : campaign) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return "may hold only letters, digits and . _ : -";
  }
  return "";
}

Result<NewMessage> validate_submission(const Config& config, const Submission& s) {
  if (!config.category(s.category)) {
    std::string known;
    for (const auto& [name, _] : config.categories) known += (known.empty() ? "" : ", ") + name;
    return make_error("category: unknown category '" + s.category + "' (configured: " + known +
                      ")");
  }
  auto address = parse_address(s.to);
  if (!address) return make_error("to: " + address.error().message);
  if (!s.campaign.empty()) {
    if (auto p = campaign_problem(s.campaign); !p.empty()) return make_error("campaign: " + p);
  }
  auto vars = vars_to_json(s.vars);
  if (!vars) return make_error("vars: " + vars.error().message);
  return NewMessage{s.campaign, s.category, address->str(), std::move(vars.value())};
}

}  // namespace bulkmail
