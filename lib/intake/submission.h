// A request to queue one message, from the CLI, an import row or the HTTP API, and the one set of
// checks every such request passes before it reaches the store.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/result.h"
#include "compose/compose_scratch.h"
#include "compose/vars.h"
#include "config/config.h"
#include "store/store.h"

namespace bulkmail {

class Composer;

struct Submission {
  std::string category;
  std::string to;  // as given; normalized by validation
  Vars vars;
  std::string campaign;  // may be empty
};

// Whether `campaign` may name a campaign: 1-100 letters, digits and . _ : - The error is a
// predicate for the caller to give its subject: "may hold only letters, digits and . _ : -".
Result<void> check_campaign_name(std::string_view campaign);

// Checks the category against the config, the address, the variables and the campaign name. The
// error names the field: "to: the address has no '@'".
Result<NewMessage> validate_submission(const Config& config, const Submission& s);

// Composes a message once, as bulkmaild will when it sends it, so that a message that could never
// be sent (a variable its template uses is missing, a subject word longer than the 998 octets a
// header line may hold) is refused when it is queued, as `bulkmailctl preview` refuses it, rather
// than failing at send time. The DKIM signature is left out: it cannot fail for one message and
// is most of the cost. About 15 us a message (BENCHMARKS.md, unsigned compose): it roughly
// doubles the time an import takes, a small price beside the hours of sending its rows.
// Thread-safe: callers on several threads take turns.
class ComposeCheck {
 public:
  // The error names the template file that cannot be loaded.
  static Result<std::unique_ptr<ComposeCheck>> create(std::shared_ptr<const Config> config);
  // With a composer already made from `config` (Composer::clone(false)): no file is read.
  static std::unique_ptr<ComposeCheck> create(std::shared_ptr<const Config> config,
                                              std::unique_ptr<Composer> composer);
  ~ComposeCheck();

  const Config& config() const { return *config_; }

  // Whether the message `m` (validated, from `s`) can be composed; the error is the composer's.
  // `s` supplies the variables as given; `m` the normalized recipient.
  Result<void> check_composes(const Submission& s, const NewMessage& m) const;

 private:
  ComposeCheck() = default;
  std::shared_ptr<const Config> config_;
  std::unique_ptr<Composer> composer_;
  mutable std::mutex mu_;
  mutable ComposeScratch scratch_;  // guarded by mu_: one caller composes with it at a time
};

// validate_submission(check.config(), s), then the compose check: what every message queued by
// the CLI, an import or the HTTP API passes. A message that cannot be composed fails with
// "vars: the message would not be sent: <why>".
Result<NewMessage> validate_submission(const ComposeCheck& check, const Submission& s);

}  // namespace bulkmail
