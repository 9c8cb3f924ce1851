// The throttle's shared part, where several daemons drain one queue (PostgreSQL): the rates, the
// per-domain connection caps and the daily limit hold for all of them together, not for each.
//
// A daemon asks for what it needs in one exchange (one round trip to the database) and spends it
// locally, message by message:
//   - tokens for each rate (global, per domain): a GCRA row per key, several tokens per exchange,
//     so the database is asked about once per batch, not once per message;
//   - connection slots for each domain with a connection cap: session advisory locks, which the
//     database frees by itself when a daemon's session ends (it died, or lost the database);
//   - places under the daily limit: a counter per UTC day, places taken a few at a time.
// The throttle (throttle.h) keeps what was granted and says what to ask for next; the dispatcher
// carries the exchange to a worker thread (quota_worker.h). The database's clock is the one clock
// every daemon shares, so the rates are kept on it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/clock.h"

namespace bulkmail {

// Tokens for one rate key ("global", "domain:example.com").
struct TokenAsk {
  std::string key;
  double per_second = 0;
  double burst = 0;  // tokens that may go at once beyond one
  int want = 1;
};

// Connection slots for one domain: slot numbers 0 to cap-1, each one session advisory lock.
struct SlotAsk {
  std::string domain;
  int cap = 0;
  std::vector<int> held;  // the slots this daemon holds already
  int want = 1;
};

struct QuotaAsk {
  std::vector<TokenAsk> tokens = {};
  std::vector<SlotAsk> slots = {};
  // Places under the daily limit (when daily_want > 0): the UTC day (days since the epoch), the
  // limit, and how many this daemon counts as sent today already (the day's counter starts there
  // when this is the first daemon to ask today).
  std::int64_t day = 0;
  std::int64_t daily_limit = 0;
  std::int64_t daily_want = 0;
  std::int64_t sent_today = 0;
  // Slots handed back (domain, slot), and unused places handed back at shutdown.
  std::vector<std::pair<std::string, int>> release_slots = {};
  std::int64_t daily_return = 0;
};

struct TokenGrant {
  int granted = 0;
  Micros wait = 0;  // when none was granted: how long until the next token
};

struct QuotaAnswer {
  std::vector<TokenGrant> tokens;       // lines up with QuotaAsk::tokens
  std::vector<std::vector<int>> slots;  // lines up with QuotaAsk::slots: the slots now taken
  std::int64_t daily_granted = 0;
  std::int64_t daily_used = 0;  // the day's places taken by every daemon, after this exchange
  // Changes when the database session changed (a reconnect): the slots held before are gone.
  std::uint64_t session = 0;
};

class ClusterQuota {
 public:
  virtual ~ClusterQuota() = default;
  // One exchange. Throws when the database fails: nothing was granted then.
  virtual QuotaAnswer exchange(const QuotaAsk& ask) = 0;
};

}  // namespace bulkmail
