#include "suppression_lift.h"

namespace bulkmail {

LiftResult lift_suppression(Store& store, const std::string& address, const std::string& category,
                            bool consent_given, const std::string& source, UnixMillis now) {
  // find_suppression also answers with the all-mail suppression for a category: only an exact
  // match is lifted here.
  auto existing = store.find_suppression(address, category);
  if (!existing || existing->category != category) return {LiftStatus::not_found, std::nullopt};
  if (is_recipient_choice(existing->reason) && !consent_given) {
    return {LiftStatus::needs_consent, existing};
  }
  auto removed = store.unsuppress(address, category, source, now);
  if (!removed) return {LiftStatus::not_found, std::nullopt};
  return {LiftStatus::lifted, removed};
}

std::string needs_consent_message(const Suppression& kept) {
  return "this suppression records the recipient's own " + std::string(to_string(kept.reason)) +
         ": mailing them again needs their renewed consent; ";
}

}  // namespace bulkmail
