#include "store/suppression.h"

namespace bulkmail {

std::string_view to_string(SuppressionReason r) {
  switch (r) {
    case SuppressionReason::unsubscribe:
      return "unsubscribe";
    case SuppressionReason::hard_bounce:
      return "hard-bounce";
    case SuppressionReason::soft_bounce:
      return "soft-bounce";
    case SuppressionReason::complaint:
      return "complaint";
    case SuppressionReason::manual:
      return "manual";
    case SuppressionReason::import:
      return "import";
  }
  return "manual";
}

namespace {
constexpr SuppressionReason kAllReasons[] = {
    SuppressionReason::unsubscribe, SuppressionReason::hard_bounce, SuppressionReason::soft_bounce,
    SuppressionReason::complaint,   SuppressionReason::manual,      SuppressionReason::import};
}

std::optional<SuppressionReason> parse_suppression_reason(std::string_view s) {
  for (auto r : kAllReasons) {
    if (to_string(r) == s) return r;
  }
  return std::nullopt;
}

std::string suppression_reason_list() {
  std::string out;
  for (auto r : kAllReasons) {
    if (!out.empty()) out += ", ";
    out += to_string(r);
  }
  return out;
}

std::vector<std::string> suppression_reason_names() {
  std::vector<std::string> out;
  out.reserve(std::size(kAllReasons));
  for (auto r : kAllReasons) out.emplace_back(to_string(r));
  return out;
}

bool is_recipient_choice(SuppressionReason r) {
  return r == SuppressionReason::unsubscribe || r == SuppressionReason::complaint;
}

std::string suppression_summary(const Suppression& s) {
  return std::string(to_string(s.reason)) + (s.category.empty() ? ", all mail" : "");
}

bool is_suppression_evidence(std::string_view event_type) {
  for (std::string_view t : kSuppressionEvidenceEvents) {
    if (t == event_type) return true;
  }
  return false;
}

namespace {
int rank(SuppressionReason r) {
  switch (r) {
    case SuppressionReason::import:
      return 0;
    case SuppressionReason::manual:
      return 1;
    case SuppressionReason::soft_bounce:
      return 2;
    case SuppressionReason::hard_bounce:
      return 3;
    case SuppressionReason::unsubscribe:
      return 4;
    case SuppressionReason::complaint:
      return 5;
  }
  return 0;
}
}  // namespace

bool stronger_reason(SuppressionReason a, SuppressionReason b) { return rank(a) > rank(b); }

namespace {
// rank() of the reason in `column`, as SQL.
std::string rank_sql(const std::string& column) {
  std::string out = "(CASE " + column;
  for (auto r : kAllReasons) {
    out += " WHEN '" + std::string(to_string(r)) + "' THEN " + std::to_string(rank(r));
  }
  return out + " ELSE 0 END)";
}
}  // namespace

std::string keep_stronger_suppression_sql() {
  return "ON CONFLICT (address, category) DO UPDATE SET reason = excluded.reason, source = "
         "excluded.source, created_at = CASE WHEN excluded.created_at < suppressions.created_at "
         "THEN excluded.created_at ELSE suppressions.created_at END WHERE " +
         rank_sql("excluded.reason") + " > " + rank_sql("suppressions.reason");
}

nlohmann::json suppression_json(const Suppression& s) {
  return {{"email", s.address},
          {"category", s.category.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.category)},
          {"reason", std::string(to_string(s.reason))},
          {"source", s.source},
          {"created_at", format_iso8601(s.created_at)}};
}

}  // namespace bulkmail
