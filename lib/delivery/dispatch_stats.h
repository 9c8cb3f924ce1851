// What the dispatcher has done since the daemon started: the numbers behind the systemd status
// line and GET /metrics. Kept by the dispatcher under its lock; others read a copy (stats()).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

namespace bulkmail {

struct DispatchStats {
  std::int64_t sent = 0, deferred = 0, failed = 0, bounced = 0, suppressed = 0, released = 0;
  std::int64_t in_flight = 0, buffered = 0;
  std::map<int, std::int64_t> replies_by_class;  // 2, 4, 5; 0 for no reply
  // Delivery latency histogram: upper bounds in milliseconds, counts per bucket (last: +Inf).
  static constexpr std::array<double, 10> kLatencyBoundsMs = {1,   5,   10,  25,   50,
                                                              100, 250, 500, 1000, 5000};
  std::array<std::int64_t, 11> latency_buckets{};
  double latency_sum_ms = 0;
  bool paused = false;
  std::string pause_reason;
  // The store worker cannot record (the database is away, or its disk full): paused for that.
  bool database_away = false;
  std::int64_t sent_today = 0;   // accepted by the relay since 00:00 UTC (the daily limit's count)
  std::int64_t daily_limit = 0;  // throttle.daily_limit; 0: none
};

}  // namespace bulkmail
