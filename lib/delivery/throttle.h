// Sending rates: a global token bucket, per-domain buckets and connection caps, a daily limit,
// and a domain that answers 4xx slowing down by itself (its concurrency halves and it pauses,
// doubling while the 4xx continue) without holding back other domains. Pure: time comes in as an
// argument, so the maths is tested directly. Not thread-safe; the dispatcher's loop owns it.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "base/clock.h"
#include "config/config.h"

namespace bulkmail {

class TokenBucket {
 public:
  TokenBucket() = default;
  TokenBucket(double per_second, double burst, Micros now);
  // Takes a token when one is there.
  bool try_take(Micros now);
  // When the next token will be there (now when one is).
  Micros next_token_at(Micros now);

 private:
  void refill(Micros now);
  double rate_ = 0;      // tokens per second
  double capacity_ = 1;  // bucket size: 1 + burst
  double tokens_ = 1;
  Micros last_ = 0;
};

class Throttle {
 public:
  Throttle(const ThrottleConfig& config, int max_connections, Micros now);

  struct Gate {
    bool ok = false;
    Micros retry_at = 0;       // when !ok: when to ask again
    bool daily_limit = false;  // when !ok: held by the daily limit (not by this domain)
  };

  // May a message to `domain` start now? Does not take anything.
  Gate check(const std::string& domain, Micros now, UnixMillis wall_now);
  // A message to `domain` starts: takes the tokens and a connection slot.
  void started(const std::string& domain, Micros now, UnixMillis wall_now);
  // It ended; `temporary_failure` for a 4xx from that domain; `accepted` when the relay took it
  // (what the daily limit counts).
  void finished(const std::string& domain, bool temporary_failure, bool accepted, Micros now,
                UnixMillis wall_now);

  // The daily limit counts messages the relay accepted in the UTC day: this many so far, from
  // the store at start-up (messages `sent` since midnight), then counted as they are accepted.
  // Deliveries in flight hold a place under the limit, so it is never overshot.
  void set_sent_today(std::int64_t n, UnixMillis wall_now);
  std::int64_t sent_today(UnixMillis wall_now);
  // Whether the day's messages are all sent (sent_today() >= daily_limit, when there is one).
  bool daily_limit_reached(UnixMillis wall_now);
  std::int64_t daily_limit() const { return config_.daily_limit; }
  // A new config (SIGHUP): rates and caps change, counts and penalties stay.
  void reconfigure(const ThrottleConfig& config, int max_connections, Micros now);

  // How many slots a domain may use now (tests and status).
  int domain_concurrency(const std::string& domain) const;

 private:
  struct Domain {
    TokenBucket bucket;
    bool has_rate = false;
    int max_connections = 0;  // configured cap (0: the global one)
    int allowed = 0;          // current cap after 4xx penalties
    int in_flight = 0;
    Micros paused_until = 0;
    Micros pause = 0;  // next pause length; doubles while 4xx continue
  };
  Domain& domain(const std::string& name, Micros now);
  void roll_day(UnixMillis wall_now);

  ThrottleConfig config_;
  int max_connections_;
  TokenBucket global_;
  std::map<std::string, Domain> domains_;
  std::int64_t day_ = -1;
  std::int64_t sent_today_ = 0;
  std::int64_t in_flight_ = 0;  // started and not finished, every domain
};

}  // namespace bulkmail
