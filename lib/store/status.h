// The queue's state counts and what the daemon is doing, as JSON: what `bulkmailctl status
// --json` prints and GET /api/v1/status answers.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>

#include "store/store.h"

namespace bulkmail {

// {"queued": 1, "sending": 0, "deferred": 0, "sent": 5, "failed": 0, "suppressed": 1,
//  "cancelled": 0, "dispatch": {"state": "paused", "detail": "daily limit reached: ...",
//  "since": "2026-11-29T03:44:00.317Z"}}: every state is present, each a number. `dispatch`
// is what the daemon last said; when no daemon is running (`daemon_running` false) its state is
// "not running", whatever the last one said (the last word kept in "last_state").
nlohmann::json status_json(const StateCounts& counts, const std::optional<DispatchState>& dispatch,
                           bool daemon_running);

// {"name": "november", "origin": "/srv/lists/november.csv", "created": "2026-11-29T03:44:00.317Z",
//  "last_activity": "...", "paused": false, "paused_since": null, "total": 3, "queued": 1, ...}:
// what `bulkmailctl campaigns --json` prints for each campaign, every state present.
nlohmann::json campaign_json(const Campaign& campaign);

}  // namespace bulkmail
