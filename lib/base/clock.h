// Time in bulkmail is Unix milliseconds (UTC) everywhere: in the store, in events, in leases.
// The store and the scheduler take `now` as an argument so their logic stays testable.
#pragma once

#include <cstdint>
#include <string>

namespace bulkmail {

using UnixMillis = std::int64_t;

// Microseconds on a monotonic clock: what the throttle and the circuit breaker count in.
using Micros = std::int64_t;

// The wall clock, in Unix milliseconds.
UnixMillis now_millis();

// "2026-11-25T21:24:16.123Z"
std::string format_iso8601(UnixMillis t);

}  // namespace bulkmail
