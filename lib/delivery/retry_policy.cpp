#include "delivery/retry_policy.h"

#include <algorithm>

namespace bulkmail {

UnixMillis backoff_delay(int attempts, const RetryConfig& p, double jitter) {
  double base = p.initial_delay_seconds * 1000.0;
  for (int i = 1; i < attempts && base < p.max_delay_seconds * 1000.0; ++i) base *= 2;
  base = std::min(base, p.max_delay_seconds * 1000.0);
  jitter = std::clamp(jitter, 0.0, 1.0);
  return static_cast<UnixMillis>(base * (0.75 + 0.5 * jitter));
}

RetryDecision decide_retry(int attempts, UnixMillis created_at, UnixMillis now,
                           const RetryConfig& p, double jitter) {
  RetryDecision d;
  d.next_attempt_at = now + backoff_delay(attempts, p, jitter);
  UnixMillis expires = created_at + UnixMillis{p.expire_after_hours} * 3'600'000;
  d.give_up = attempts >= p.max_attempts || d.next_attempt_at > expires;
  return d;
}

}  // namespace bulkmail
