// A suppression: an address that must not get mail of one category, or of any category.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/clock.h"

namespace bulkmail {

// soft_bounce: bounces.soft_limit soft bounces (mailbox full, over quota, delays) within
// bounces.soft_window_days, with no delivery to the address between them.
enum class SuppressionReason { unsubscribe, hard_bounce, soft_bounce, complaint, manual, import };

std::string_view to_string(SuppressionReason r);
std::optional<SuppressionReason> parse_suppression_reason(std::string_view s);
// "unsubscribe, hard-bounce, soft-bounce, complaint, manual, import": for messages about a bad
// reason.
std::string suppression_reason_list();
// {"unsubscribe", "hard-bounce", "soft-bounce", "complaint", "manual", "import"}: every reason's
// name, in that order, for a command line's list of allowed values.
std::vector<std::string> suppression_reason_names();

// Reasons that record the recipient's own choice (or a provider's report of it). Lifting one of
// these would mail someone who said no, so lifting one needs consent (suppression_lift.h).
bool is_recipient_choice(SuppressionReason r);
// Whether `a` says more than `b` about why mail must stop: a complaint over an unsubscribe, the
// person's own word over anything recorded on their behalf (a hard or soft bounce, manual, an
// import), a hard bounce over a soft one.
bool stronger_reason(SuppressionReason a, SuppressionReason b);
// An insert's ON CONFLICT clause, in SQL both backends read, for a suppression that may meet one
// of the same address and category: the stronger reason (stronger_reason) and its source are
// kept, with the older time. So moving suppressions together (under a forgotten address's key)
// never lets a weaker record hide a person's own request.
std::string keep_stronger_suppression_sql();

struct Suppression {
  std::string address;   // normalized (see address.h)
  std::string category;  // empty: all mail
  SuppressionReason reason = SuppressionReason::manual;
  std::string source;  // who recorded it: "cli", "import:list.csv", "one-click", "smtp", ...
  UnixMillis created_at = 0;
};

// Why a message was not sent, for its outcome and the event log: "unsubscribe, all mail" or
// "hard-bounce" (a suppression of one category).
std::string suppression_summary(const Suppression& s);

// The form the API and `bulkmailctl suppress list --json` give: email, category (null for all),
// reason, source, created_at (ISO 8601).
nlohmann::json suppression_json(const Suppression& s);

// The types of the events that are the evidence of a suppression: it being made, asked for again,
// lifted, or its address forgotten. While the address is suppressed, no store deletes them (see
// Store::prune). The SQLite schema's events_keep_evidence trigger (a shipped migration, so never
// edited) names the same types; a test checks that the two agree.
inline constexpr std::array<std::string_view, 4> kSuppressionEvidenceEvents = {
    "suppression-added", "suppression-requested", "suppression-removed", "forgotten"};
bool is_suppression_evidence(std::string_view event_type);

}  // namespace bulkmail
