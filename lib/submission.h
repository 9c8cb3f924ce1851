// A request to queue one message, from the CLI, an import row or the HTTP API, and the one set of
// checks every such request passes before it reaches the store.
#pragma once

#include <string>

#include "config.h"
#include "result.h"
#include "store.h"
#include "vars.h"

namespace bulkmail {

struct Submission {
  std::string category;
  std::string to;  // as given; normalized by validation
  Vars vars;
  std::string campaign;  // may be empty
};

// Why `campaign` cannot name a campaign, or "": 1-100 letters, digits and . _ : -
std::string campaign_problem(const std::string& campaign);

// Checks the category against the config, the address, the variables and the campaign name. The
// error names the field: "to: the address has no '@'".
Result<NewMessage> validate_submission(const Config& config, const Submission& s);

}  // namespace bulkmail
