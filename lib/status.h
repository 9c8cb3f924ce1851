// The queue's state counts as JSON: what `bulkmailctl status --json` prints and, later,
// GET /api/v1/status answers.
#pragma once

#include <nlohmann/json.hpp>

#include "store.h"

namespace bulkmail {

// {"queued": 1, "sending": 0, "deferred": 0, "sent": 5, "failed": 0, "suppressed": 1,
//  "cancelled": 0}: every state is present, each a number.
nlohmann::json status_json(const StateCounts& counts);

}  // namespace bulkmail
