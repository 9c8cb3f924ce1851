// When to try a deferred message again: exponential backoff with jitter, bounded by a maximum
// delay, a maximum number of attempts and a maximum age. Pure, so its table is tested directly.
#pragma once

#include "base/clock.h"
#include "config/config.h"

namespace bulkmail {

// The wait after `attempts` failed attempts (1 after the first): initial * 2^(attempts-1), at most
// max, then scaled by 0.75 + 0.5 * jitter (jitter in [0, 1)) so retries of a batch spread out.
UnixMillis backoff_delay(int attempts, const RetryConfig& policy, double jitter);

struct RetryDecision {
  bool give_up = false;
  UnixMillis next_attempt_at = 0;
};

// After a deferral: retry at now + backoff, or give up when the attempts are spent or the next
// try would come after the message's maximum age.
RetryDecision decide_retry(int attempts, UnixMillis created_at, UnixMillis now,
                           const RetryConfig& policy, double jitter);

}  // namespace bulkmail
