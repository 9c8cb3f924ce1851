#include "intake/suppression_lift.h"

namespace bulkmail {

LiftResult lift_suppression(Store& store, const std::string& address, const std::string& category,
                            bool consent_given, const std::string& source, UnixMillis now) {
  return store.unsuppress(address, category, source, now, consent_given);
}

std::string needs_consent_message(const Suppression& kept) {
  return "this suppression records the recipient's own " + std::string(to_string(kept.reason)) +
         ": mailing them again needs their renewed consent; ";
}

}  // namespace bulkmail
