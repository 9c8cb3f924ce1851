// The queue's state counts, a campaign's figures and what the daemon is doing, as JSON and as the
// lines `bulkmailctl status` prints: what `bulkmailctl status` and `campaigns` show and GET
// /api/v1/status and /api/v1/campaigns answer, so that the CLI and the API say the same things.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/feedback.h"
#include "store/store.h"

namespace bulkmail {

// {"queued": 1, "sending": 0, "deferred": 0, "sent": 5, "bounced": 0, "complained": 0,
//  "failed": 0, "suppressed": 1, "cancelled": 0, "dispatch": {"state": "paused", "detail":
//  "daily limit reached: ...", "since": "2026-11-29T03:44:00.317Z"}}: every state is present,
// each a number. `dispatch` is what the daemon last said; when no daemon is running
// (`daemon_running` false) its state is "not running", whatever the last one said (the last word
// kept in "last_state").
// Where several daemons share the database (Store::daemons), "daemons" lists each one's word:
// daemons_json.
nlohmann::json status_json(const StateCounts& counts, const std::optional<DispatchState>& dispatch,
                           bool daemon_running, const std::vector<DaemonState>& daemons = {},
                           UnixMillis now = 0);

// A daemon that has not renewed its heartbeat for this long is taken for dead or cut off from
// the database (it renews every 5 s while it runs).
inline constexpr UnixMillis kDaemonSilentMs = 30'000;

// [{"owner": "mail1:4242:9f3a", "state": "running", "detail": "", "since": "...", "seen":
//  "...", "alive": true}, ...]: each daemon's own word and when it was last seen; "alive" false
// for one stopped, or silent for kDaemonSilentMs at `now`.
nlohmann::json daemons_json(const std::vector<DaemonState>& daemons, UnixMillis now);
// What the daemons sharing the database do together, for the "dispatch" line and key: running
// while any live one runs (else paused while any live one is paused, else stopped), its detail
// the count by state ("3 daemons: 2 running, 1 paused"), since the newest word among them. Not
// the last word any one of them wrote (DispatchState), which one stopping would turn into
// "stopped" for all.
DispatchState cluster_dispatch(const std::vector<DaemonState>& daemons, UnixMillis now);
// The same as `bulkmailctl status` prints it, a line a daemon.
std::vector<std::string> daemon_lines(const std::vector<DaemonState>& daemons, UnixMillis now);

// {"name": "november", "origin": "/srv/lists/november.csv", "created": "2026-11-29T03:44:00.317Z",
//  "last_activity": "...", "paused": true, "paused_since": "...", "pause_reason": "complaint rate
//  0.30% (3 of 1000 answered) reached bounces.pause_complaint_rate 0.3%", "total": 3, "queued": 1,
//  ..., "answered": 1000, "hard_bounces": 2, "complaints": 3, "blocks": 0, "hard_bounce_rate":
//  0.002, "complaint_rate": 0.003, "block_rate": 0.0}: what `bulkmailctl campaigns --json` prints
// for each campaign, every state present. "pause_reason" is null unless the campaign paused itself
// (a person paused it, or it is not paused). The rates are fractions of "answered" over all of the
// campaign's life (campaign_rates; 0 while nothing is answered), not only since it was last resumed
// as the automatic pause judges them.
nlohmann::json campaign_json(const Campaign& campaign);

// status_json of the campaign's own counts, with "campaign": campaign_json(campaign): what
// `bulkmailctl status --campaign NAME --json` prints and GET /api/v1/status?campaign=NAME answers.
nlohmann::json campaign_status_json(const Campaign& campaign,
                                    const std::optional<DispatchState>& dispatch,
                                    bool daemon_running);

// "0.30%": `count` of `answered` in percent to two decimals, rounded down as the automatic pause's
// reason rounds its rate (auto_pause_reason), so that both show the same figure; "-" when nothing
// is answered.
std::string percent_of(std::int64_t count, std::int64_t answered);

// The campaign's hard-bounce, complaint and block rates over all its answered messages, a line
// each: "complaint rate 0.30% (3 of 1000 answered)"; one line "no message answered yet" while
// none is.
std::vector<std::string> rate_lines(const CampaignFeedback& feedback);

// How a paused campaign is paused, after "paused since <time>": ", automatically: <reason>" when
// it paused itself, " by an operator" when a person paused it; "" when it is not paused.
std::string pause_cause(const Campaign& campaign);

}  // namespace bulkmail
