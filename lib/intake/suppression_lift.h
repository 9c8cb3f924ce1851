// Lifting a suppression on someone's behalf (`bulkmailctl suppress remove`, DELETE
// /api/v1/suppressions): the one place that decides it, so that the rule stays the same for
// both. A suppression that records the recipient's own choice (an unsubscribe, a complaint) is
// lifted only when the caller says the recipient consented again.
#pragma once

#include <optional>
#include <string>

#include "store/store.h"

namespace bulkmail {

// `category` empty: the all-mail suppression. `address` normalized. (The store checks and removes
// in one transaction: Store::unsuppress.)
LiftResult lift_suppression(Store& store, const std::string& address, const std::string& category,
                            bool consent_given, const std::string& source, UnixMillis now);

// "this suppression records the recipient's own unsubscribe: mailing them again needs their
// renewed consent; " — the caller adds how to say that consent was given.
std::string needs_consent_message(const Suppression& kept);

}  // namespace bulkmail
