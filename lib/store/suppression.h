// A suppression: an address that must not get mail of one category, or of any category.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"

namespace bulkmail {

enum class SuppressionReason { unsubscribe, hard_bounce, complaint, manual, import };

std::string_view to_string(SuppressionReason r);
std::optional<SuppressionReason> parse_suppression_reason(std::string_view s);
// "unsubscribe, hard-bounce, complaint, manual, import": for messages about a bad reason.
std::string suppression_reason_list();

// Reasons that record the recipient's own choice (or a provider's report of it). Lifting one of
// these would mail someone who said no, so lifting one needs consent (suppression_lift.h).
bool is_recipient_choice(SuppressionReason r);
// Whether `a` says more than `b` about why mail must stop: a complaint over an unsubscribe, the
// person's own word over anything recorded on their behalf (a hard bounce, manual, an import).
bool stronger_reason(SuppressionReason a, SuppressionReason b);

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

}  // namespace bulkmail
