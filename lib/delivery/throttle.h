// Sending rates: a global token bucket, per-domain buckets and connection caps, a daily limit,
// and a domain that answers 4xx slowing down by itself (its concurrency halves and it pauses,
// doubling while the 4xx continue) without holding back other domains. Pure: time comes in as an
// argument, so the maths is tested directly. Not thread-safe; the dispatcher's loop owns it.
//
// Shared (several daemons on one PostgreSQL database): the rates, the configured per-domain
// connection caps and the daily limit hold for the daemons together. The tokens, slots and
// places then come from the cluster (cluster_quota.h) a batch at a time: check() spends what was
// granted and notes what is missing, ask() says what to ask for, answered() takes the grant. The
// 4xx slow-down stays each daemon's own.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "config/config.h"
#include "store/cluster_quota.h"

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
  enum class Scope { daemon, shared };
  Throttle(const ThrottleConfig& config, int max_connections, Micros now,
           Scope scope = Scope::daemon);

  struct Gate {
    bool ok = false;
    Micros retry_at = 0;       // when !ok: when to ask again (0: when an exchange is answered)
    bool daily_limit = false;  // when !ok: held by the daily limit (not by this domain)
  };

  // May a message to `domain` start now? Does not take anything.
  Gate check(const std::string& domain, Micros now, UnixMillis wall_now);
  // A message to `domain` starts: takes the tokens and a connection slot.
  void started(const std::string& domain, Micros now, UnixMillis wall_now);
  // It ended; `temporary_failure` for a 4xx that asks the domain's sender to slow down (421, or a
  // 4xx to MAIL FROM or DATA; not one about a single recipient); `accepted` when the relay took it
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

  // --- shared ---
  bool shared() const { return scope_ == Scope::shared; }
  // What to ask the cluster for now: what check() found missing, slots idle for a second handed
  // back, and `closing` (shutting down) every slot and unused daily place. Nothing while an
  // exchange is under way or when nothing is needed.
  std::optional<QuotaAsk> ask(Micros now, UnixMillis wall_now, bool closing = false);
  void answered(const QuotaAsk& ask, const QuotaAnswer& answer, Micros now);
  // The exchange failed (the database is away): nothing more is asked for a while, doubling.
  void ask_failed(const QuotaAsk& ask, Micros now);
  // Tokens of a rate key granted and not yet spent (tests and status).
  int tokens_held(const std::string& key) const;
  // Connection slots a domain holds (tests and status).
  int slots_held(const std::string& domain) const;

 private:
  // Tokens granted by the cluster for one rate key, spent one per message.
  struct Allowance {
    int have = 0;
    bool wanted = false;    // check() found none
    Micros not_before = 0;  // the cluster said the next token comes then
  };
  struct Domain {
    TokenBucket bucket;
    bool has_rate = false;
    int max_connections = 0;  // configured cap (0: the global one)
    int allowed = 0;          // current cap after 4xx penalties
    int in_flight = 0;
    Micros paused_until = 0;
    Micros pause = 0;  // next pause length; doubles while 4xx continue
    // Shared, with a configured cap: the cluster's connection slots this daemon holds.
    std::vector<int> slots;
    bool slot_wanted = false;
    Micros slot_not_before = 0;
    Micros last_check = 0;
  };
  Domain& domain(const std::string& name, Micros now);
  void roll_day(UnixMillis wall_now);
  // Shared: whether `key`'s allowance has a token; notes the want when not. retry_at as Gate's.
  bool shared_token(const std::string& key, Micros now, Micros& retry_at);
  Gate shared_check(Domain& d, const std::string& name, Micros now, UnixMillis wall_now);
  int batch_for(double per_second, double burst) const;

  ThrottleConfig config_;
  int max_connections_;
  TokenBucket global_;
  std::map<std::string, Domain> domains_;
  std::int64_t day_ = -1;
  std::int64_t sent_today_ = 0;
  std::int64_t in_flight_ = 0;  // started and not finished, every domain

  // Shared.
  Scope scope_;
  std::map<std::string, Allowance> tokens_;  // by rate key
  bool asking_ = false;                      // an exchange is under way
  Micros ask_again_at_ = 0;                  // after a failed exchange
  Micros ask_backoff_ = 0;
  std::uint64_t session_ = 0;
  std::vector<std::pair<std::string, int>> to_release_;
  std::int64_t daily_have_ = 0;  // places granted, not yet spent
  bool daily_wanted_ = false;
  bool daily_exhausted_ = false;  // the cluster has no place left today
  std::int64_t daily_used_ = -1;  // the cluster's count, once known
};

}  // namespace bulkmail
