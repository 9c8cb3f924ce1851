// Time in bulkmail is Unix milliseconds (UTC) everywhere: in the store, in events, in leases.
// The store and the scheduler take `now` as an argument so their logic stays testable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

namespace bulkmail {

using UnixMillis = std::int64_t;

// Microseconds on a monotonic clock: what the throttle and the circuit breaker count in.
using Micros = std::int64_t;

// The wall clock, in Unix milliseconds.
UnixMillis now_millis();

// The clocks a component with timed waits reads, injected so that its tests run on simulated time
// (tests/support/simulated_clock.h) instead of sleeping through real seconds.
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  // Monotonic microseconds, for rates and back-offs.
  virtual Micros now_micros() = 0;
  // The wall clock, for what is recorded or counted by calendar day.
  virtual UnixMillis now_millis() = 0;
  // Waits on `cv` (its mutex held by `lock`) until notified or this clock reaches `deadline`
  // (monotonic microseconds). May return early: callers re-check what they wait for.
  virtual void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          Micros deadline) = 0;
};

// steady_clock and system_clock.
TimeSource& system_time();

// "2026-11-25T21:24:16.123Z"
std::string format_iso8601(UnixMillis t);

}  // namespace bulkmail
