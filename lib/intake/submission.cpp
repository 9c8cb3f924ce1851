#include "intake/submission.h"

#include "base/text.h"
#include "compose/composer.h"

namespace bulkmail {

Result<void> check_campaign_name(std::string_view campaign) {
  if (campaign.empty()) return make_error("is empty");
  if (campaign.size() > 100) return make_error("is longer than 100 characters");
  for (char c : campaign) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return make_error("may hold only letters, digits and . _ : -");
  }
  return {};
}

Result<NewMessage> validate_submission(const Config& config, const Submission& s) {
  if (!config.category(s.category)) {
    std::string known;
    for (const auto& [name, _] : config.categories) known += (known.empty() ? "" : ", ") + name;
    return field_error("category", "unknown category '" + printable_line(s.category) +
                                       "' (configured: " + known + ")");
  }
  auto address = parse_address(s.to);
  if (!address) return field_error("to", address.error().message);
  if (!s.campaign.empty()) {
    if (auto named = check_campaign_name(s.campaign); !named)
      return field_error("campaign", named.error().message);
  }
  auto vars = vars_to_json(s.vars);
  if (!vars) {
    // "vars: variable 'x' holds ...", naming the variable as the field when the error does.
    Error e = field_error("vars", vars.error().message);
    if (!vars.error().field.empty()) e.field = vars.error().field;
    return e;
  }
  return NewMessage{s.campaign, s.category, address->str(), std::move(vars.value())};
}

Result<std::unique_ptr<ComposeCheck>> ComposeCheck::create(std::shared_ptr<const Config> config) {
  // The same config without DKIM: the composer then skips the signature.
  auto unsigned_config = std::make_shared<Config>(*config);
  unsigned_config->dkim.reset();
  auto composer = Composer::create(std::move(unsigned_config));
  if (!composer) return composer.error();
  std::unique_ptr<ComposeCheck> check(new ComposeCheck());
  check->config_ = std::move(config);
  check->composer_ = std::move(composer.value());
  return check;
}

std::unique_ptr<ComposeCheck> ComposeCheck::create(std::shared_ptr<const Config> config,
                                                   std::unique_ptr<Composer> composer) {
  std::unique_ptr<ComposeCheck> check(new ComposeCheck());
  check->config_ = std::move(config);
  check->composer_ = std::move(composer);
  return check;
}

ComposeCheck::~ComposeCheck() = default;

Result<void> ComposeCheck::check_composes(const Submission& s, const NewMessage& m) const {
  std::lock_guard lock(mu_);
  auto composed =
      composer_->compose({m.category, m.recipient, s.vars, m.campaign, 0, now_millis()}, scratch_);
  if (!composed) return composed.error();
  return {};
}

Result<NewMessage> validate_submission(const ComposeCheck& check, const Submission& s) {
  auto m = validate_submission(check.config(), s);
  if (!m) return m;
  if (auto composed = check.check_composes(s, *m); !composed)
    return field_error("vars", "the message would not be sent: " + composed.error().message);
  return m;
}

}  // namespace bulkmail
