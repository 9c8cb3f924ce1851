// What the store records for a sender's result: the mapping from a classified SMTP reply (or a
// suppression, a compose failure, an abort) to a message state, with the retry policy applied.
// Pure, so every branch is tested directly.
#pragma once

#include "config/config.h"
#include "delivery/job.h"
#include "store/store.h"

namespace bulkmail {

// `jitter` in [0, 1) spreads retries; `relay_retry_at` is when a message that was never attempted
// (the relay refused the connection) becomes due again.
Outcome outcome_for(const JobResult& result, const RetryConfig& retry, UnixMillis now,
                    double jitter, UnixMillis relay_retry_at);

}  // namespace bulkmail
